//! Config loading: defaults, file, environment, validation messages.

use std::collections::HashMap;

use super::*;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |k| map.get(k).cloned()
}

fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("config.toml");
    std::fs::write(&p, text).unwrap();
    (dir, p)
}

#[test]
fn the_documented_defaults_are_the_built_in_defaults() {
    let parsed: Config = toml::from_str(DEFAULT_TOML).unwrap();
    assert_eq!(parsed, Config::default());
}

#[test]
fn a_file_overrides_some_keys_and_keeps_the_rest() {
    let (_d, p) = file("[policy]\npush = 0.6\nmode = \"auto\"\n\n[genesys]\nqueues = [\"q1\"]\n");
    let c = Config::load(Some(&p), Path::new("/nonexistent"), &env(&[])).unwrap();
    assert_eq!((c.policy.push, c.policy.mode), (0.6, crate::engine::Mode::Auto));
    assert_eq!(c.policy.show, Policy::default().show);
    assert_eq!(c.genesys.queues, vec!["q1"]);
}

#[test]
fn unknown_keys_and_bad_values_name_the_key_and_line() {
    let (_d, p) = file("[policy]\nshow = 0.3\nshwo = 0.4\n");
    let err = Config::load(Some(&p), Path::new("/x"), &env(&[])).unwrap_err().to_string();
    assert!(err.contains("shwo") && err.contains("line 3"), "{err}");
    let (_d, p) = file("[policy]\ntop_k = \"three\"\n");
    let err = Config::load(Some(&p), Path::new("/x"), &env(&[])).unwrap_err().to_string();
    assert!(err.contains("top_k") && err.contains("line 2"), "{err}");
    let (_d, p) = file("[policy]\npush = 7.0\n");
    let err = Config::load(Some(&p), Path::new("/x"), &env(&[])).unwrap_err().to_string();
    assert!(err.contains("policy.push"), "{err}");
    let (_d, p) = file("[genesys]\nregion = \"mars_north_1\"\n");
    let err = Config::load(Some(&p), Path::new("/x"), &env(&[])).unwrap_err().to_string();
    assert!(err.contains("genesys.region"), "{err}");
    let (_d, p) = file("[keys]\n\"ctrl-c\" = \"help\"\n");
    assert!(Config::load(Some(&p), Path::new("/x"), &env(&[])).unwrap_err().to_string().contains("ctrl-c"));
    let err = Config::load(Some(Path::new("/no/such.toml")), Path::new("/x"), &env(&[])).unwrap_err();
    assert!(err.to_string().contains("/no/such.toml"));
}

#[test]
fn environment_sets_credentials_region_and_bases() {
    let c = Config::load(None, Path::new("/x"), &env(&[("GENESYS_REGION", "eu_west_1")])).unwrap();
    assert_eq!(c.api_base().unwrap(), "https://api.mypurecloud.ie");
    assert_eq!(c.login_base().unwrap(), "https://login.mypurecloud.ie");
    assert!(c.endpoint().unwrap_err().to_string().contains("GENESYS_CLIENT_ID"));

    let vars = [
        ("GENESYS_CLIENT_ID", "id"),
        ("GENESYS_CLIENT_SECRET", "s3cret"),
        ("GENESYS_API_BASE", "http://127.0.0.1:9000"),
    ];
    let c = Config::load(None, Path::new("/x"), &env(&vars)).unwrap();
    let e = c.endpoint().unwrap();
    assert_eq!(
        (e.api_base.as_str(), e.login_base.as_str()),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000")
    );
    assert_eq!(e.client_secret.expose(), "s3cret");
    assert!(!format!("{c:?}").contains("s3cret"), "secret in Debug output");

    let c = Config::load(None, Path::new("/x"), &env(&[("GENESYS_ORG_DOMAIN", "acme.mygen.com")])).unwrap();
    assert_eq!(
        (c.genesys.dialect, c.api_base().unwrap()),
        (Dialect::Tutorial, "https://acme.mygen.com".to_string())
    );
}

#[test]
fn the_nats_section_is_checked_and_keeps_its_secrets() {
    let (_d, p) = file(
        "[nats]\nurl = \"nats://10.0.0.5:4222\"\nuser = \"floor\"\npassword = \"s3cret-pw\"\nlease_ttl_ms = 3000\n",
    );
    let c = Config::load(Some(&p), Path::new("/x"), &env(&[])).unwrap();
    assert_eq!(c.nats.lease_ttl(), std::time::Duration::from_secs(3));
    assert!(c.nats.rebalance, "rebalancing is on by default");
    assert!(!format!("{c:?}").contains("s3cret-pw"));
    let (_d, p) = file("[nats]\nrebalance = false\n");
    assert!(!Config::load(Some(&p), Path::new("/x"), &env(&[])).unwrap().nats.rebalance);
    for (text, key) in [
        ("[nats]\nlease_ttl_ms = 100\n", "nats.lease_ttl_ms"),
        ("[nats]\nuser = \"floor\"\n", "nats.user"),
        ("[nats]\nprefix = \"a.b\"\n", "nats.prefix"),
        ("[nats]\npublish_buffer = 0\n", "nats.publish_buffer"),
    ] {
        let (_d, p) = file(text);
        let err = Config::load(Some(&p), Path::new("/x"), &env(&[])).and_then(|c| c.validate().map(|()| c));
        let err = err.unwrap_err().to_string();
        assert!(err.contains(key), "{text}: {err}");
    }
}
