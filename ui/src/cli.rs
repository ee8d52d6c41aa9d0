//! The command line: `berth` alone starts the console; subcommands are one-shot clients of the
//! same dispatcher, for scripts and benchmarks.

use berth::api::{
    ApiError, Command, ContainerConfig, ContainerId, Engine, EngineOptions, Event, ImageRef,
    LogOptions, Reply,
};
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version,
    about = "A terminal console for containers, with its own engine inside"
)]
struct Cli {
    /// State directory of the engine [default: /var/lib/berth as root]
    #[arg(long, global = true, env = "BERTH_ROOT", value_name = "DIR")]
    root: Option<PathBuf>,
    /// Policy file [default: /etc/berth/policy.toml if present, else the shipped policy]
    #[arg(long, global = true, value_name = "FILE")]
    policy: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// List containers
    Ps {
        /// Show all containers (default shows just running)
        #[arg(short, long)]
        all: bool,
        /// Only display container IDs
        #[arg(short, long)]
        quiet: bool,
    },
    /// List images
    Images {
        /// Only show image IDs
        #[arg(short, long)]
        quiet: bool,
    },
    /// Pull an image from a registry
    Pull {
        image: String,
        #[arg(long)]
        platform: Option<String>,
    },
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Stop one or more running containers
    Stop {
        /// Seconds to wait before killing the container
        #[arg(short = 't', long = "time")]
        time: Option<u32>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove one or more containers
    Rm {
        /// Force the removal of a running container (uses SIGKILL)
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove one or more images
    Rmi {
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Fetch the logs of a container
    Logs {
        #[arg(short, long)]
        follow: bool,
        /// Number of lines to show from the end of the logs
        #[arg(short = 'n', long)]
        tail: Option<String>,
        #[arg(short, long)]
        timestamps: bool,
        container: String,
    },
    /// Return low-level information on containers or images
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Execute a command in a running container
    Exec {
        #[arg(short, long)]
        interactive: bool,
        #[arg(short, long)]
        tty: bool,
        #[arg(short, long)]
        user: Option<String>,
        #[arg(short, long = "env")]
        env: Vec<String>,
        #[arg(short, long)]
        workdir: Option<String>,
        container: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// Show the engine's version
    Version,
    /// Show engine-wide information
    Info,
    /// Stream the engine's events (of every berth process on this root) as JSON lines
    Events,
    /// Serve the Docker Engine API on a unix socket, for the docker CLI and SDKs
    Serve {
        /// The socket to listen on (mode 0660, group `berth` when that group exists)
        #[arg(long, value_name = "PATH", default_value = berth::api::http::DEFAULT_SOCKET)]
        socket: PathBuf,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Run in the background and print the container ID
    #[arg(short, long)]
    detach: bool,
    /// Remove the container when it exits
    #[arg(long)]
    rm: bool,
    #[arg(long)]
    name: Option<String>,
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    #[arg(short, long)]
    interactive: bool,
    #[arg(short, long)]
    tty: bool,
    image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = color_eyre::install();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    rt.block_on(run(cli))
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("berth: {msg}");
    ExitCode::from(1)
}

fn open_engine(cli: &Cli) -> Result<Engine, ExitCode> {
    Engine::open(EngineOptions {
        root: cli.root.clone(),
        policy: cli.policy.clone(),
    })
    .map_err(fail)
}

async fn run(cli: Cli) -> ExitCode {
    let engine = match open_engine(&cli) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let Some(cmd) = cli.command else {
        let label = engine.root().path().display().to_string();
        return match crate::console::run(engine, label).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(format!("{e:?}")),
        };
    };
    match one_shot(&engine, cmd).await {
        Ok(code) => code,
        Err(e) => fail(e),
    }
}

/// Submit and unwrap.
async fn submit(engine: &Engine, cmd: Command) -> Result<Reply, ApiError> {
    engine.submit(cmd).await
}

async fn one_shot(engine: &Engine, cmd: Sub) -> Result<ExitCode, ApiError> {
    let mut out = std::io::stdout().lock();
    match cmd {
        Sub::Ps { all, quiet } => {
            let Reply::Containers(list) = submit(engine, Command::ContainerList { all }).await?
            else {
                return Err(unexpected());
            };
            if !quiet {
                let _ = writeln!(
                    out,
                    "{:<12}   {:<24} {:<20} {:<28} NAMES",
                    "CONTAINER ID", "IMAGE", "COMMAND", "STATUS"
                );
            }
            let now = now();
            for c in list {
                if quiet {
                    let _ = writeln!(out, "{}", c.id.short());
                } else {
                    let _ = writeln!(
                        out,
                        "{:<12}   {:<24} {:<20} {:<28} {}",
                        c.id.short(),
                        truncate(&c.image, 24),
                        truncate(&format!("\"{}\"", c.command), 20),
                        crate::console::view::status_text(&c, now),
                        c.name
                    );
                }
            }
        }
        Sub::Images { quiet } => {
            let Reply::Images(list) = submit(engine, Command::ImageList).await? else {
                return Err(unexpected());
            };
            if !quiet {
                let _ = writeln!(
                    out,
                    "{:<40} {:<12}   {:<14} SIZE",
                    "REPOSITORY:TAG", "IMAGE ID", "CREATED"
                );
            }
            let now = now();
            for i in list {
                if quiet {
                    let _ = writeln!(out, "{}", i.id.short());
                    continue;
                }
                let names = if i.repo_tags.is_empty() {
                    vec!["<none>:<none>".to_owned()]
                } else {
                    i.repo_tags.clone()
                };
                for n in names {
                    let created = i
                        .created
                        .map(|c| format!("{} ago", crate::console::view::human_duration(now - c)))
                        .unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "{:<40} {:<12}   {:<14} {}",
                        n,
                        i.id.short(),
                        created,
                        crate::console::view::human_size(i.size)
                    );
                }
            }
        }
        Sub::Pull { image, platform } => {
            let reply = submit(
                engine,
                Command::ImagePull {
                    reference: ImageRef(image.clone()),
                    platform,
                },
            )
            .await?;
            if let Reply::ImageId(id) = reply {
                let _ = writeln!(out, "{image}: pulled {id}");
            }
        }
        Sub::Run(args) => {
            let config = ContainerConfig {
                image: ImageRef(args.image),
                name: args.name,
                cmd: args.command,
                env: args.env,
                tty: args.tty,
                open_stdin: args.interactive,
                auto_remove: args.rm,
                ..Default::default()
            };
            let reply = submit(
                engine,
                Command::ContainerCreate {
                    config: Box::new(config),
                    pull: true,
                },
            )
            .await?;
            let Reply::ContainerId(id) = reply else {
                return Err(unexpected());
            };
            submit(engine, Command::ContainerStart { id: id.clone() }).await?;
            if args.detach {
                let _ = writeln!(out, "{id}");
            } else if let Reply::ExitCode(code) = submit(
                engine,
                Command::ContainerWait {
                    id,
                    condition: berth::api::WaitCondition::NextExit,
                },
            )
            .await?
            {
                return Ok(ExitCode::from(code.clamp(0, 255) as u8));
            }
        }
        Sub::Stop { time, containers } => {
            for c in containers {
                submit(
                    engine,
                    Command::ContainerStop {
                        id: ContainerId(c.clone()),
                        timeout: time,
                    },
                )
                .await?;
                let _ = writeln!(out, "{c}");
            }
        }
        Sub::Rm { force, containers } => {
            for c in containers {
                submit(
                    engine,
                    Command::ContainerRemove {
                        id: ContainerId(c.clone()),
                        force,
                    },
                )
                .await?;
                let _ = writeln!(out, "{c}");
            }
        }
        Sub::Rmi { force, images } => {
            for i in images {
                submit(
                    engine,
                    Command::ImageRemove {
                        reference: ImageRef(i.clone()),
                        force,
                    },
                )
                .await?;
                let _ = writeln!(out, "Untagged: {i}");
            }
        }
        Sub::Logs {
            follow,
            tail,
            timestamps,
            container,
        } => {
            let tail =
                match tail.as_deref() {
                    None | Some("all") => None,
                    Some(n) => Some(n.parse().map_err(|_| {
                        ApiError::InvalidArgument(format!("--tail {n}: not a number"))
                    })?),
                };
            let options = LogOptions {
                follow,
                tail,
                timestamps,
                stdout: true,
                stderr: true,
                ..Default::default()
            };
            submit(
                engine,
                Command::ContainerLogs {
                    id: ContainerId(container),
                    options,
                },
            )
            .await?;
        }
        Sub::Inspect { names } => {
            let mut all = Vec::new();
            for n in names {
                let reply = match submit(
                    engine,
                    Command::ContainerInspect {
                        id: ContainerId(n.clone()),
                    },
                )
                .await
                {
                    Err(ApiError::NoSuchContainer(_)) => {
                        submit(
                            engine,
                            Command::ImageInspect {
                                reference: ImageRef(n),
                            },
                        )
                        .await?
                    }
                    other => other?,
                };
                if let Reply::Json(v) = reply {
                    all.push(v);
                }
            }
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&all).unwrap_or_default()
            );
        }
        Sub::Exec {
            interactive,
            tty,
            user,
            env,
            workdir,
            container,
            command,
        } => {
            let config = berth::api::ExecConfig {
                container: ContainerId(container),
                cmd: command,
                env,
                user,
                workdir,
                tty,
                stdin: interactive,
                privileged: false,
            };
            submit(
                engine,
                Command::ExecCreate {
                    config: Box::new(config),
                },
            )
            .await?;
        }
        Sub::Version => {
            let Reply::Version(v) = submit(engine, Command::SystemVersion).await? else {
                return Err(unexpected());
            };
            let _ = writeln!(
                out,
                "berth {}\n API version: {} (minimum {})\n OS/Arch: {}/{}\n Kernel: {}",
                v.version, v.api_version, v.min_api_version, v.os, v.arch, v.kernel
            );
        }
        Sub::Info => {
            let Reply::Info(i) = submit(engine, Command::SystemInfo).await? else {
                return Err(unexpected());
            };
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&i).unwrap_or_default()
            );
        }
        Sub::Serve { socket } => {
            drop(out);
            let opts = berth::api::http::ServeOptions {
                socket,
                ..Default::default()
            };
            let server = berth::api::http::Server::bind(&opts)
                .map_err(|e| ApiError::engine("berth serve", e))?;
            eprintln!(
                "berth: serving the Docker Engine API on unix://{}",
                server.path().display()
            );
            server
                .run(engine.clone())
                .await
                .map_err(|e| ApiError::engine("berth serve", e))?;
        }
        Sub::Events => {
            let mut rx = engine
                .subscribe()
                .map_err(|e| ApiError::engine("following events", e))?;
            drop(out);
            loop {
                match rx.recv().await {
                    Ok(rec) => {
                        if matches!(rec.event, Event::Stats(_)) {
                            continue;
                        }
                        let mut out = std::io::stdout().lock();
                        if writeln!(out, "{}", serde_json::to_string(&rec).unwrap_or_default())
                            .and_then(|_| out.flush())
                            .is_err()
                        {
                            break;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        eprintln!("berth: missed {n} events")
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn unexpected() -> ApiError {
    ApiError::engine("berth", "unexpected reply from the engine")
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}
