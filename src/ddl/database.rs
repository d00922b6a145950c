//! `CREATE DATABASE` and `ALTER DATABASE … SET` for `restore --create`: the new
//! database gets the source's encoding, locale (provider, collation, character
//! classes, ICU rules) and comment when it is made, and its database-wide settings
//! only once the data is in, so a setting such as `default_transaction_read_only`
//! cannot stand in the restore's way.

use super::DdlOptions;
use crate::catalog::{quote_ident, quote_literal, Acl, Catalog, DatabaseProps};

/// Settings whose value is a list that `setconfig` keeps already quoted (PostgreSQL's
/// `GUC_LIST_QUOTE` variables, as pg_dump lists them): written back as they are.
const LIST_SETTINGS: [&str; 6] = [
    "local_preload_libraries",
    "search_path",
    "session_preload_libraries",
    "shared_preload_libraries",
    "temp_tablespaces",
    "unix_socket_directories",
];

/// The statements that make database `name` like the source's, for a target server
/// of `server_version_num` `target`. `Err` says why the target cannot: a locale
/// provider or ICU rules it does not have.
pub fn create_database(name: &str, cat: &Catalog, target: i32) -> Result<Vec<String>, String> {
    let mut sql = format!("CREATE DATABASE {} TEMPLATE template0", quote_ident(name));
    if !cat.encoding.is_empty() {
        sql.push_str(&format!(" ENCODING {}", quote_literal(&cat.encoding)));
    }
    let Some(db) = &cat.database else {
        return Ok(vec![sql]);
    };
    let needs = |version: i32, what: &str| {
        if target < version {
            Err(format!(
                "the source database uses {what}, which needs PostgreSQL {} or later to \
                 create",
                version / 10000
            ))
        } else {
            Ok(())
        }
    };
    match db.locale_provider.as_str() {
        "icu" => {
            needs(150000, "the ICU locale provider")?;
            sql.push_str(" LOCALE_PROVIDER icu");
            if let Some(locale) = &db.locale {
                sql.push_str(&format!(" ICU_LOCALE {}", quote_literal(locale)));
            }
            if let Some(rules) = &db.icu_rules {
                needs(160000, "ICU collation rules")?;
                sql.push_str(&format!(" ICU_RULES {}", quote_literal(rules)));
            }
        }
        "builtin" => {
            needs(170000, "the builtin locale provider")?;
            sql.push_str(" LOCALE_PROVIDER builtin");
            if let Some(locale) = &db.locale {
                sql.push_str(&format!(" BUILTIN_LOCALE {}", quote_literal(locale)));
            }
        }
        // A target whose template0 uses another provider would otherwise pass it on.
        _ if target >= 150000 => sql.push_str(" LOCALE_PROVIDER libc"),
        _ => {}
    }
    sql.push_str(&format!(
        " LC_COLLATE {} LC_CTYPE {}",
        quote_literal(&db.collate),
        quote_literal(&db.ctype)
    ));
    let mut out = vec![sql];
    if let Some(comment) = &db.comment {
        out.push(format!(
            "COMMENT ON DATABASE {} IS {}",
            quote_ident(name),
            quote_literal(comment)
        ));
    }
    Ok(out)
}

/// The owner and privileges of the new database `name`, as `restore` gives the
/// objects in it (`--no-owner`, `--no-privileges` leave them out).
pub fn database_privileges(name: &str, db: &DatabaseProps, opts: &DdlOptions) -> Vec<String> {
    let target = format!("DATABASE {}", quote_ident(name));
    let mut out: Vec<String> = opts.owner(&target, &db.owner).into_iter().collect();
    if let Some(acl) = db.acl.as_ref().filter(|_| opts.privileges) {
        let acl = Acl {
            target,
            ..acl.clone()
        };
        out.extend(super::acl::statements(
            &acl,
            db.owner.as_deref(),
            opts.owners,
        ));
    }
    out
}

/// `ALTER DATABASE … SET` for each of the source's database-wide settings, with the
/// setting's name (errors name the setting, never its value, which may be a secret).
pub fn database_settings(name: &str, db: &DatabaseProps) -> Vec<(String, String)> {
    db.settings
        .iter()
        .filter_map(|s| s.split_once('='))
        .map(|(var, value)| {
            let value = if LIST_SETTINGS.contains(&var.to_ascii_lowercase().as_str()) {
                value.to_string()
            } else {
                quote_literal(value)
            };
            let sql = format!(
                "ALTER DATABASE {} SET {} TO {value}",
                quote_ident(name),
                quote_ident(var)
            );
            (var.to_string(), sql)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(db: Option<DatabaseProps>) -> Catalog {
        Catalog {
            encoding: "UTF8".into(),
            database: db,
            ..Catalog::default()
        }
    }

    fn props(provider: &str, locale: Option<&str>) -> DatabaseProps {
        DatabaseProps {
            collate: "de_DE.UTF-8".into(),
            ctype: "de_DE.UTF-8".into(),
            locale_provider: provider.into(),
            locale: locale.map(String::from),
            icu_rules: None,
            comment: Some("ward's data".into()),
            owner: Some("ward admin".into()),
            acl: Some(Acl {
                target: "DATABASE \"source\"".into(),
                items: vec![
                    "=T/\"ward admin\"".into(),
                    "\"ward admin\"=CTc/\"ward admin\"".into(),
                    "nurse=c/\"ward admin\"".into(),
                ],
                defaults: vec![
                    "=Tc/\"ward admin\"".into(),
                    "\"ward admin\"=CTc/\"ward admin\"".into(),
                ],
            }),
            settings: vec![
                "search_path=\"$user\", app".into(),
                "TimeZone=Europe/Berlin".into(),
                "app.note=a'b".into(),
            ],
        }
    }

    #[test]
    fn older_backups_carry_the_encoding_only() {
        assert_eq!(
            create_database("new db", &catalog(None), 170000).unwrap(),
            ["CREATE DATABASE \"new db\" TEMPLATE template0 ENCODING 'UTF8'"]
        );
    }

    #[test]
    fn the_locale_follows_the_provider_and_the_target_version() {
        let libc = catalog(Some(props("libc", None)));
        assert_eq!(
            create_database("d", &libc, 150000).unwrap(),
            [
                "CREATE DATABASE \"d\" TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER libc \
                 LC_COLLATE 'de_DE.UTF-8' LC_CTYPE 'de_DE.UTF-8'",
                "COMMENT ON DATABASE \"d\" IS 'ward''s data'",
            ]
        );
        assert!(!create_database("d", &libc, 140000).unwrap()[0].contains("PROVIDER"));
        let mut icu = props("icu", Some("de-DE"));
        icu.icu_rules = Some("&a < z".into());
        let icu = catalog(Some(icu));
        assert!(create_database("d", &icu, 160000).unwrap()[0]
            .contains("LOCALE_PROVIDER icu ICU_LOCALE 'de-DE' ICU_RULES '&a < z' LC_COLLATE"));
        let why = create_database("d", &icu, 150000).unwrap_err();
        assert!(
            why.contains("ICU collation rules") && why.contains("16"),
            "{why}"
        );
        let why = create_database("d", &icu, 140000).unwrap_err();
        assert!(why.contains("ICU locale provider"), "{why}");
        let builtin = catalog(Some(props("builtin", Some("C.UTF-8"))));
        assert!(create_database("d", &builtin, 170000).unwrap()[0]
            .contains("LOCALE_PROVIDER builtin BUILTIN_LOCALE 'C.UTF-8'"));
        assert!(create_database("d", &builtin, 160000).is_err());
    }

    #[test]
    fn owner_and_privileges_name_the_new_database_and_follow_the_options() {
        let db = props("libc", None);
        let all = database_privileges("copy", &db, &DdlOptions::default());
        assert_eq!(all[0], "ALTER DATABASE \"copy\" OWNER TO \"ward admin\"");
        assert!(
            all.contains(&"REVOKE ALL ON DATABASE \"copy\" FROM PUBLIC".to_string()),
            "{all:?}"
        );
        assert!(
            all.iter()
                .any(|s| s.contains("GRANT CONNECT ON DATABASE \"copy\" TO \"nurse\"")),
            "{all:?}"
        );
        assert!(all.iter().all(|s| !s.contains("source")), "{all:?}");
        let no_owner = DdlOptions {
            owners: false,
            ..DdlOptions::default()
        };
        assert!(database_privileges("copy", &db, &no_owner)
            .iter()
            .all(|s| !s.contains("OWNER")));
        let no_privileges = DdlOptions {
            privileges: false,
            ..DdlOptions::default()
        };
        assert_eq!(
            database_privileges("copy", &db, &no_privileges),
            ["ALTER DATABASE \"copy\" OWNER TO \"ward admin\""]
        );
    }

    #[test]
    fn list_settings_keep_their_quoting_and_others_are_literals() {
        let sql: Vec<String> = database_settings("d", &props("libc", None))
            .into_iter()
            .map(|(_, sql)| sql)
            .collect();
        assert_eq!(
            sql,
            [
                "ALTER DATABASE \"d\" SET \"search_path\" TO \"$user\", app",
                "ALTER DATABASE \"d\" SET \"TimeZone\" TO 'Europe/Berlin'",
                "ALTER DATABASE \"d\" SET \"app.note\" TO 'a''b'",
            ]
        );
    }
}
