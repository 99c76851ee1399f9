//! `RUN` steps as containers, through the container service: the same
//! shim, runtime, spec (Docker's default capabilities, seccomp profile
//! and masked paths) and overlay root as `docker run`. Like Docker's
//! classic builder, the step's container shows in `docker ps -a` while it
//! runs and is removed once its changes are taken.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use berth_builder::{Executor, Finished, RunMount, RunStep};

use crate::containers::model::{CreateRequest, HostConfig};
use crate::containers::{AttachOptions, ContainerService};

/// The label of a build step's container.
pub const STEP_LABEL: &str = "berth.build-step";

/// Runs build steps as containers.
#[derive(Debug, Clone)]
pub struct ContainerExecutor {
    pub containers: Arc<ContainerService>,
    /// What a `FROM` of an image the store lacks pulls with.
    pub puller: Puller,
}

/// The store, events and registry settings a pull needs.
#[derive(Debug, Clone)]
pub struct Puller {
    pub store: Arc<berth_store::Store>,
    pub events: Arc<crate::events::Events>,
    pub registries: berth_registry::ClientOptions,
}

/// Removes a step's container when dropped.
#[derive(Debug)]
struct Remove {
    containers: Arc<ContainerService>,
    id: String,
}

impl Drop for Remove {
    fn drop(&mut self) {
        if let Err(e) = self.containers.remove(&self.id, true, true) {
            tracing::warn!(id = self.id, error = %e.message, "removing a build step's container");
        }
    }
}

impl Executor for ContainerExecutor {
    fn pull(&self, image: &str, output: &mut (dyn Write + Send)) -> Result<(), String> {
        let reference = image
            .parse::<berth_image::Reference>()
            .map_err(|e| e.to_string())?
            .with_default_tag();
        let req = crate::pull::PullRequest {
            image: reference.to_string(),
            ..crate::pull::PullRequest::default()
        };
        let p = &self.puller;
        let stream = crate::pull::start(p.store.clone(), p.events.clone(), &p.registries, &req)
            .map_err(|e| e.message)?;
        // The progress as the classic builder prints it: a line a change.
        for line in stream.lines() {
            if let Some(e) = line["error"].as_str() {
                return Err(e.to_owned());
            }
            let status = line["status"].as_str().unwrap_or_default();
            if status == "Downloading" {
                continue;
            }
            let text = match line["id"].as_str() {
                Some(id) => format!("{id}: {status}\n"),
                None => format!("{status}\n"),
            };
            let _ = output.write_all(text.as_bytes());
        }
        Ok(())
    }

    fn run(
        &self,
        step: &RunStep,
        output: &mut (dyn Write + Send),
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Result<Finished, String> {
        let id = self
            .containers
            .create(None, request(step))
            .map_err(|e| e.message)?;
        let guard = Remove {
            containers: self.containers.clone(),
            id: id.clone(),
        };
        // Whole lines in one write: each write becomes one stream message.
        let _ = output.write_all(format!(" ---> Running in {}\n", &id[..12]).as_bytes());
        let upper = self.containers.upper_dir(&id);
        for d in &step.mkdirs {
            // The upper dir is the daemon's own, empty before the start.
            let path = upper.join(d.trim_start_matches('/'));
            std::fs::create_dir_all(&path).map_err(|e| format!("creating {d}: {e}"))?;
        }
        let attachment = self
            .containers
            .attach(
                &id,
                AttachOptions {
                    stdin: false,
                    stdout: true,
                    stderr: true,
                },
            )
            .map_err(|e| e.message)?;
        let ticket = self
            .containers
            .prepare_wait(&id, "next-exit")
            .map_err(|e| e.message)?;
        self.containers.start(&id).map_err(|e| e.message)?;
        let (finished, watch) = std::sync::mpsc::channel::<()>();
        let exit_code = std::thread::scope(|s| {
            let containers = &self.containers;
            let id = &id;
            // Cancels the step when the build is cancelled. It waits on the
            // channel, not a sleep: the step's end (the sender dropped)
            // wakes it at once, so no step waits for a polling tick.
            s.spawn(move || loop {
                if cancelled() {
                    let _ = containers.kill(id, Some("SIGKILL"));
                    return;
                }
                match watch.recv_timeout(Duration::from_millis(100)) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
            });
            if let Some(stream) = attachment.connect() {
                demux(stream, output);
            }
            let code = self.containers.wait_for(&ticket);
            drop(finished);
            code
        });
        let _ =
            output.write_all(format!("Removing intermediate container {}\n", &id[..12]).as_bytes());
        Ok(Finished {
            exit_code,
            upper: self.containers.upper_dir(&id),
            cleanup: Box::new(guard),
        })
    }
}

/// The container request for a step: its argv exactly (no entrypoint),
/// its environment, user, directory, mounts and network.
fn request(step: &RunStep) -> CreateRequest {
    let mut binds = Vec::new();
    let mut tmpfs = BTreeMap::new();
    for m in &step.mounts {
        match m {
            RunMount::Bind {
                source,
                target,
                readonly,
            } => binds.push(format!(
                "{}:{target}:{}",
                source.display(),
                if *readonly { "ro" } else { "rw" }
            )),
            RunMount::Tmpfs { target, size } => {
                tmpfs.insert(
                    target.clone(),
                    size.map(|s| format!("size={s}")).unwrap_or_default(),
                );
            }
        }
    }
    // No bridge network yet: a step's "default" network is the host's, so
    // package managers reach their mirrors (BuildKit's host-network mode).
    let network = match step.network.as_str() {
        "none" => "none",
        _ => "host",
    };
    CreateRequest {
        image: step.image.to_string(),
        cmd: Some(step.args.clone()),
        entrypoint: Some(Vec::new()),
        env: Some(step.env.clone()),
        working_dir: step.workdir.clone(),
        user: step.user.clone(),
        labels: Some(BTreeMap::from([(STEP_LABEL.to_owned(), "true".to_owned())])),
        attach_stdout: true,
        attach_stderr: true,
        // The builder discards what a step writes under a VOLUME itself:
        // no volume is made per step.
        no_image_volumes: true,
        host_config: HostConfig {
            binds: (!binds.is_empty()).then_some(binds),
            tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
            network_mode: network.to_owned(),
            ..HostConfig::default()
        },
        ..CreateRequest::default()
    }
}

/// Copies the payloads of Docker's multiplexed frames (an 8-byte header:
/// stream, 3 zero bytes, big-endian length) to `out`.
fn demux(mut stream: impl Read, out: &mut (dyn Write + Send)) {
    let mut header = [0u8; 8];
    let mut buf = Vec::new();
    while stream.read_exact(&mut header).is_ok() {
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        buf.resize(len, 0);
        if stream.read_exact(&mut buf).is_err() {
            return;
        }
        if out.write_all(&buf).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_unwrapped_in_order() {
        let mut raw = Vec::new();
        for (s, text) in [(1u8, "out\n"), (2, "err\n")] {
            raw.extend([s, 0, 0, 0]);
            raw.extend(u32::try_from(text.len()).unwrap().to_be_bytes());
            raw.extend(text.as_bytes());
        }
        let mut out = Vec::new();
        demux(&raw[..], &mut out);
        assert_eq!(out, b"out\nerr\n");
    }

    #[test]
    fn a_step_runs_its_argv_with_its_mounts() {
        let step = RunStep {
            image: berth_image::Digest::sha256(b"x"),
            args: vec!["/bin/sh".into(), "-c".into(), "make".into()],
            env: vec!["A=1".into()],
            user: "app".into(),
            workdir: "/src".into(),
            mounts: vec![
                RunMount::Bind {
                    source: "/var/cache/x".into(),
                    target: "/root/.cache".into(),
                    readonly: false,
                },
                RunMount::Tmpfs {
                    target: "/tmp".into(),
                    size: Some(1024),
                },
            ],
            network: "default".into(),
            mkdirs: Vec::new(),
        };
        let r = request(&step);
        assert_eq!(r.entrypoint, Some(vec![]));
        assert_eq!(r.cmd.unwrap()[2], "make");
        assert_eq!(
            r.host_config.binds.unwrap(),
            ["/var/cache/x:/root/.cache:rw"]
        );
        assert_eq!(r.host_config.tmpfs.unwrap()["/tmp"], "size=1024");
        assert_eq!(r.host_config.network_mode, "host");
    }
}
