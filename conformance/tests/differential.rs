//! Differential test: discovery, CRUD of every built-in kind that needs no
//! controller, patches, server-side apply, watches, selectors, pagination, bad
//! input, Table output and OpenAPI, replayed to upstream's kube-apiserver and
//! to ironkube; every difference must be in the allow-list, and every
//! allow-list entry must still match a difference.

use conformance::differential;

#[test]
fn ironkube_answers_the_request_script_as_the_reference_kube_apiserver_does() {
    let started = std::time::Instant::now();
    let (script, allow) = differential::default_files();
    let report = match differential::run(&script, &allow) {
        Ok(r) => r,
        Err(e) => panic!("differential run failed: {e}"),
    };
    let text = report.to_string();
    println!("{text}");
    println!("wall time {:?}", started.elapsed());
    if !report.passed() {
        let file = std::env::temp_dir().join("ironkube-differential-report.txt");
        let written = std::fs::write(&file, &text).is_ok();
        panic!(
            "ironkube differs from the reference API server beyond conformance/differential/allow.yaml{}:\n{text}",
            if written {
                format!(" (report in {})", file.display())
            } else {
                String::new()
            }
        );
    }
}
