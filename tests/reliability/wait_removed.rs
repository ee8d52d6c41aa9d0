//! Waiting for a container's removal (`run --rm`, Docker's `wait?condition=removed`): the
//! monitor answers once the container is gone, with its exit; a container that is not removed
//! by its monitor is waited for until someone removes it.

use std::time::Duration;

use berth::api::{Command, ContainerId, Engine, EngineOptions, Reply, WaitCondition};

use crate::harness::Root;

#[test]
fn run_rm_returns_the_exit_code_once_the_container_is_gone() {
    if !crate::support::require_root() {
        return;
    }
    let image = crate::images::busybox_image();
    let mut root = Root::new();
    root.ok(&["pull", &image]);
    for code in [0, 7] {
        let out = root.run(&["run", "--rm", &image, "sh", "-c", &format!("exit {code}")]);
        assert_eq!(out.status.code(), Some(code), "{out:?}");
        // Gone the moment the CLI returns: no listing, no directory left under containers/.
        assert_eq!(root.ok(&["ps", "-aq"]), "");
        let left: Vec<_> = std::fs::read_dir(root.path().join("containers"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| !n.to_string_lossy().starts_with('.'))
            .collect();
        assert!(left.is_empty(), "left in containers/: {left:?}");
    }
    assert_eq!(root.host_leaks_settled(), Vec::<String>::new());
}

#[test]
fn a_removal_waiter_of_a_kept_container_returns_when_it_is_removed() {
    if !crate::support::require_root() {
        return;
    }
    let image = crate::images::busybox_image();
    let mut root = Root::new();
    root.ok(&["pull", &image]);
    root.ok(&["run", "-d", "--name", "kept", &image, "sleep", "1000"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let engine = Engine::open(EngineOptions {
        root: Some(root.path().to_owned()),
        policy: None,
    })
    .unwrap();
    rt.block_on(async {
        let mut waiter = {
            let engine = engine.clone();
            tokio::spawn(async move {
                engine
                    .submit(Command::ContainerWait {
                        id: ContainerId("kept".into()),
                        condition: WaitCondition::Removed,
                    })
                    .await
            })
        };
        // Stopped is not removed: the waiter waits on (its monitor has ended by now).
        root.ok(&["stop", "-t", "0", "kept"]);
        let early = tokio::time::timeout(Duration::from_millis(500), &mut waiter).await;
        assert!(early.is_err(), "answered before the removal: {early:?}");
        root.ok(&["rm", "kept"]);
        let done = tokio::time::timeout(Duration::from_secs(20), waiter)
            .await
            .expect("the waiter saw the removal")
            .unwrap();
        assert!(
            matches!(done, Ok(Reply::ExitCode(137))),
            "a container stopped by SIGKILL: {done:?}"
        );
    });
    assert_eq!(root.host_leaks_settled(), Vec::<String>::new());
}
