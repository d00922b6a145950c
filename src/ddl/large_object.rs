//! A restored large object's owner, privileges and comment. `lo_create` makes it
//! belong to the restoring user with default privileges, so these turn it back into
//! what the source held.

use super::DdlOptions;
use crate::catalog::{quote_literal, Acl, LargeObject};

pub fn large_object_statements(lo: &LargeObject, opts: &DdlOptions) -> Vec<String> {
    let target = format!("LARGE OBJECT {}", lo.oid);
    let mut out: Vec<String> = opts.owner(&target, &lo.owner).into_iter().collect();
    if let Some(acl) = lo.acl.as_ref().filter(|_| opts.privileges) {
        let acl = Acl {
            target: target.clone(),
            ..acl.clone()
        };
        out.extend(super::acl::statements(
            &acl,
            lo.owner.as_deref(),
            opts.owners,
        ));
    }
    if let Some(c) = &lo.comment {
        out.push(format!("COMMENT ON {target} IS {}", quote_literal(c)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_grants_and_comment_follow_the_options() {
        let lo = LargeObject {
            oid: 4242,
            owner: Some("ward admin".into()),
            acl: Some(Acl {
                target: "LARGE OBJECT 4242".into(),
                items: vec![
                    "\"ward admin\"=rw/\"ward admin\"".into(),
                    "nurse=r/\"ward admin\"".into(),
                ],
                defaults: vec!["\"ward admin\"=rw/\"ward admin\"".into()],
            }),
            comment: Some("it's a scan".into()),
        };
        let all = large_object_statements(&lo, &DdlOptions::default());
        assert_eq!(all[0], "ALTER LARGE OBJECT 4242 OWNER TO \"ward admin\"");
        assert!(
            all.iter()
                .any(|s| s.contains("GRANT SELECT ON LARGE OBJECT 4242 TO \"nurse\"")),
            "{all:?}"
        );
        assert_eq!(
            all.last().unwrap(),
            "COMMENT ON LARGE OBJECT 4242 IS 'it''s a scan'"
        );
        let bare = large_object_statements(
            &lo,
            &DdlOptions {
                owners: false,
                privileges: false,
            },
        );
        assert_eq!(bare, vec!["COMMENT ON LARGE OBJECT 4242 IS 'it''s a scan'"]);
    }
}
