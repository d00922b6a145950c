//! Roles belong to the cluster: a backup restored into another cluster meets owners
//! and grantees the target lacks. The backup records them; `--create-roles` makes the
//! missing ones (never with a password), `--role-map` puts others in their place.

use crate::support::{run_sql, stderr, World};

const CLINIC: &str = r#"
-- Created in name order, as --create-roles does: a policy lists its roles by OID.
CREATE ROLE clinic_owner LOGIN CREATEDB CONNECTION LIMIT 7 PASSWORD 'never-copied';
COMMENT ON ROLE clinic_owner IS 'owns the clinic schema';
CREATE ROLE clinic_reader NOLOGIN;
CREATE ROLE clinic_staff NOLOGIN;
GRANT clinic_staff TO clinic_reader WITH ADMIN OPTION;
CREATE SCHEMA clinic AUTHORIZATION clinic_owner;
CREATE TABLE clinic.patients (id int PRIMARY KEY, name text);
ALTER TABLE clinic.patients OWNER TO clinic_owner;
GRANT SELECT ON clinic.patients TO clinic_reader;
GRANT UPDATE (name) ON clinic.patients TO clinic_staff;
ALTER TABLE clinic.patients ENABLE ROW LEVEL SECURITY;
CREATE POLICY staff_only ON clinic.patients TO clinic_staff, clinic_reader USING (true);
ALTER DEFAULT PRIVILEGES FOR ROLE clinic_owner IN SCHEMA clinic
    GRANT SELECT ON TABLES TO clinic_reader;
INSERT INTO clinic.patients VALUES (1, 'Ada'), (2, 'Grace');
SELECT lo_from_bytea(424201, 'scan');
ALTER LARGE OBJECT 424201 OWNER TO clinic_owner;
GRANT SELECT ON LARGE OBJECT 424201 TO clinic_reader;
"#;

async fn query_strings(w: &World, db: &str, sql: &str) -> Vec<String> {
    let c = w.pg.conn(db).connect().await.unwrap();
    c.query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restore_into_another_cluster_creates_or_maps_the_roles_it_names() {
    let source = World::start();
    source.empty_db("clinic").await;
    run_sql(&source, "clinic", CLINIC).await;
    let repo = source.init_repo("repo");
    crate::support::ok(source.backup(&repo, "clinic", &[]));

    let target = World::start();
    target.empty_db("clinic").await;
    let refused = target.restore(&repo, "latest", "clinic");
    assert!(!refused.status.success());
    let err = stderr(&refused);
    assert!(
        err.contains(
            "the target cluster lacks 3 role(s) the backup's objects name: clinic_owner, \
             clinic_reader, clinic_staff"
        ) && err.contains("--create-roles"),
        "{err}"
    );
    // Without owners and grants, only the roles the policy names are needed.
    let bare = target.restore_with(
        &repo,
        "latest",
        "clinic",
        &["--no-owner", "--no-privileges"],
    );
    let err = stderr(&bare);
    assert!(
        err.contains("lacks 2 role(s) the backup's objects name: clinic_reader, clinic_staff"),
        "{err}"
    );
    assert!(
        query_strings(
            &target,
            "clinic",
            "SELECT relname::text FROM pg_class WHERE relname = 'patients'"
        )
        .await
        .is_empty(),
        "the failed pre-data left nothing behind"
    );

    let created = target.restore_with(&repo, "latest", "clinic", &["--create-roles"]);
    assert!(created.status.success(), "{}", stderr(&created));
    source.assert_same_as("clinic", &target, "clinic").await;
    let roles = query_strings(
        &target,
        "clinic",
        "SELECT format('%s login=%s createdb=%s limit=%s password=%s comment=%s', rolname, \
         rolcanlogin, rolcreatedb, rolconnlimit, rolpassword IS NOT NULL, \
         shobj_description(oid, 'pg_authid')) FROM pg_authid \
         WHERE rolname LIKE 'clinic%' ORDER BY 1",
    )
    .await;
    assert_eq!(
        roles,
        [
            "clinic_owner login=t createdb=t limit=7 password=f comment=owns the clinic schema",
            "clinic_reader login=f createdb=f limit=-1 password=f comment=",
            "clinic_staff login=f createdb=f limit=-1 password=f comment=",
        ]
    );
    let members = query_strings(
        &target,
        "clinic",
        "SELECT format('%s in %s admin=%s', m.member::regrole, m.roleid::regrole, m.admin_option::text) \
         FROM pg_auth_members m WHERE m.roleid::regrole::text LIKE 'clinic%'",
    )
    .await;
    assert_eq!(members, ["clinic_reader in clinic_staff admin=true"]);

    // Into roles the target already has, by other names.
    run_sql(
        &target,
        "postgres",
        "CREATE ROLE ward_owner; CREATE ROLE ward_reader; CREATE ROLE ward_staff;",
    )
    .await;
    target.empty_db("mapped").await;
    let mapped = target.restore_with(
        &repo,
        "latest",
        "mapped",
        &[
            "--role-map",
            "clinic_owner=ward_owner",
            "--role-map",
            "clinic_reader=ward_reader",
            "--role-map",
            "clinic_staff=ward_staff",
        ],
    );
    assert!(mapped.status.success(), "{}", stderr(&mapped));
    let dump = target.schema_dump("mapped");
    assert!(!dump.contains("clinic_"), "{dump}");
    for line in [
        "ALTER TABLE clinic.patients OWNER TO ward_owner;",
        "GRANT SELECT ON TABLE clinic.patients TO ward_reader;",
        "GRANT UPDATE(name) ON TABLE clinic.patients TO ward_staff;",
        "CREATE POLICY staff_only ON clinic.patients TO ward_reader, ward_staff USING (true);",
    ] {
        assert!(dump.contains(line), "{line} missing from:\n{dump}");
    }
    let defaults = query_strings(
        &target,
        "mapped",
        "SELECT format('%s %s', defaclrole::regrole, defaclacl) FROM pg_default_acl",
    )
    .await;
    assert_eq!(defaults, ["ward_owner {ward_reader=r/ward_owner}"]);
    let lo = query_strings(
        &target,
        "mapped",
        "SELECT format('%s %s', lomowner::regrole, lomacl) FROM pg_largeobject_metadata \
         WHERE oid = 424201",
    )
    .await;
    assert_eq!(
        lo,
        ["ward_owner {ward_owner=rw/ward_owner,ward_reader=r/ward_owner}"]
    );
    let bad = target.restore_with(&repo, "latest", "mapped", &["--role-map", "clinic_owner"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("expected OLD=NEW"),
        "{}",
        stderr(&bad)
    );
}
