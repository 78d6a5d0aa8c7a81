//! Every operation the route tables mark as served by cpixd itself (the
//! Cloud Video Kit DRM group) is answered by a route of cpixd with that
//! method and path, and the gateway's refusal points at it.

mod common;

use common::http::send;
use common::server::{config_toml, TestServer, ACME_KEY};
use cpixd::proxy::routes::catalogues;

#[tokio::test]
async fn every_native_operation_has_a_route() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path(), &config_toml()).await;
    let auth = [("x-api-key", ACME_KEY), ("x-tenant-id", "acme")];
    let mut checked = 0;
    for cat in catalogues() {
        for op in cat.operations.iter().filter(|o| o.is_native()) {
            let path = common::world::sample_path(op);
            let r = send(op.method.as_str(), &s.url(&path), &auth, vec![]).await;
            let what = format!("{} {} ({})", op.method, path, op.name);
            let body = r.text();
            assert!(
                !(r.status == 404 && body.contains("no endpoint")) && r.status != 405,
                "{what} has no route: {} {body}",
                r.status
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 12);
    s.stop().await;
}
