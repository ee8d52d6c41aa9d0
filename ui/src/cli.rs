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
    /// Use the engine of a running `berth serve` (unix:///path) instead of the embedded one
    #[arg(long, global = true, env = "BERTH_HOST", value_name = "URL")]
    host: Option<String>,
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
    /// Push an image to a registry
    Push { image: String },
    /// Build an image from a Dockerfile
    Build {
        /// Name (and optionally tag) the image, name:tag (repeatable)
        #[arg(short = 't', long = "tag")]
        tags: Vec<String>,
        /// The Dockerfile (default: CONTEXT/Dockerfile)
        #[arg(short = 'f', long = "file")]
        file: Option<PathBuf>,
        /// A build-time variable, KEY=VALUE (repeatable)
        #[arg(long = "build-arg")]
        build_args: Vec<String>,
        /// Do not use the layer cache
        #[arg(long)]
        no_cache: bool,
        /// The stage to build
        #[arg(long)]
        target: Option<String>,
        /// Only print the image ID
        #[arg(short, long)]
        quiet: bool,
        context: PathBuf,
    },
    /// Create a tag TARGET that refers to SOURCE
    Tag { source: String, target: String },
    /// Show the history of an image
    History { image: String },
    /// Save images to a tar archive (docker save format, also an OCI archive)
    Save {
        /// Write to a file instead of standard output
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Load images from a tar archive (docker save or OCI archive)
    Load {
        /// Read from a file instead of standard input
        #[arg(short, long)]
        input: Option<PathBuf>,
    },
    /// Make an image from a rootfs tarball
    Import {
        file: PathBuf,
        reference: Option<String>,
    },
    /// Log in to a registry (credentials go to ~/.docker/config.json)
    Login {
        #[arg(short, long)]
        username: String,
        /// Read the password from standard input
        #[arg(long)]
        password_stdin: bool,
        #[arg(short, long)]
        password: Option<String>,
        registry: String,
    },
    /// Manage images
    #[command(subcommand)]
    Image(ImageSub),
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Create a new container without starting it
    Create(RunArgs),
    /// Start one or more stopped containers
    Start {
        /// Attach STDOUT/STDERR and wait for the container
        #[arg(short, long)]
        attach: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Restart one or more containers
    Restart {
        #[arg(short = 't', long = "time")]
        time: Option<u32>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Kill one or more running containers
    Kill {
        /// Signal to send to the container
        #[arg(short, long, default_value = "KILL")]
        signal: String,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Pause all processes within one or more containers
    Pause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Unpause all processes within one or more containers
    Unpause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Rename a container
    Rename { container: String, name: String },
    /// Block until one or more containers stop, then print their exit codes
    Wait {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Display the running processes of a container
    Top { container: String },
    /// Display a live stream of container(s) resource usage statistics
    Stats {
        /// Disable streaming stats and only pull the first result
        #[arg(long)]
        no_stream: bool,
        containers: Vec<String>,
    },
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerSub),
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
        /// Show logs since a timestamp (RFC 3339) or relative (e.g. 42m)
        #[arg(long)]
        since: Option<String>,
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
        /// Detached mode: run the command in the background
        #[arg(short, long)]
        detach: bool,
        container: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// Show the engine's version
    Version,
    /// Show engine-wide information
    Info,
    /// Check the engine's store (digests, references, crash debris)
    #[command(subcommand)]
    System(SystemSub),
    /// Stream the engine's events (of every berth process on this root) as JSON lines
    Events,
    /// Check the policy, or explain how it decides a command
    #[command(subcommand)]
    Policy(PolicySub),
    /// Manage networks
    #[command(subcommand)]
    Network(NetworkSub),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeSub),
    /// Serve the Docker Engine API on a unix socket, for the docker CLI and SDKs
    Serve {
        /// The socket to listen on (mode 0660, group `berth` when that group exists)
        #[arg(long, value_name = "PATH", default_value = berth::api::http::DEFAULT_SOCKET)]
        socket: PathBuf,
        /// Also listen on TCP (HOST:PORT), with TLS and client certificates only (like
        /// `dockerd --tlsverify`). A client's certificate CN names the local user whose policy
        /// applies to it; a CN that is no local user is refused
        #[arg(long, value_name = "ADDR")]
        tcp: Option<String>,
        /// CA certificate that signs client certificates [default: /etc/berth/tls/ca.pem]
        #[arg(long, value_name = "PATH", requires = "tcp")]
        tlscacert: Option<PathBuf>,
        /// The server's certificate [default: /etc/berth/tls/cert.pem]
        #[arg(long, value_name = "PATH", requires = "tcp")]
        tlscert: Option<PathBuf>,
        /// The server's private key [default: /etc/berth/tls/key.pem]
        #[arg(long, value_name = "PATH", requires = "tcp")]
        tlskey: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum SystemSub {
    /// Verify every blob's digest and every image's blobs; report what a crash left
    Check {
        /// Remove corrupt blobs and what processes that are gone left behind
        #[arg(long)]
        repair: bool,
    },
}

#[derive(Subcommand, Debug)]
enum PolicySub {
    /// Validate a policy file (default: the policy in effect) and print its rule count
    Check { file: Option<PathBuf> },
    /// Show, rule by rule, how the policy decides a command line (e.g. `run --privileged busybox`)
    Explain {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
enum ContainerSub {
    /// List containers
    Ls {
        #[arg(short, long)]
        all: bool,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Display detailed information on one or more containers
    Inspect {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove all stopped containers
    Prune {
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ImageSub {
    /// Display detailed information on one or more images
    Inspect {
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Remove unused images
    Prune {
        /// Remove all images no container uses, not just dangling ones
        #[arg(short, long)]
        all: bool,
        /// Do not ask for confirmation
        #[arg(short, long)]
        force: bool,
    },
    /// List images
    Ls,
}

#[derive(Subcommand, Debug)]
enum NetworkSub {
    /// Create a bridge network
    Create {
        /// Subnet in CIDR format (a private range); picked from 10.88.0.0/16… when not given
        #[arg(long)]
        subnet: Option<String>,
        /// Driver (only bridge)
        #[arg(short, long, default_value = "bridge")]
        driver: String,
        /// Set metadata on a network (key=value)
        #[arg(long)]
        label: Vec<String>,
        name: String,
    },
    /// List networks
    #[command(alias = "list")]
    Ls {
        #[arg(short, long)]
        quiet: bool,
    },
    /// Display detailed information on one or more networks
    Inspect {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Connect a container to a network
    Connect { network: String, container: String },
    /// Disconnect a container from a network
    Disconnect {
        network: String,
        container: String,
        /// Accepted for Docker compatibility
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
enum VolumeSub {
    /// Create a volume
    Create {
        /// Set metadata for a volume (key=value)
        #[arg(long)]
        label: Vec<String>,
        name: Option<String>,
    },
    /// List volumes
    #[command(alias = "list")]
    Ls {
        #[arg(short, long)]
        quiet: bool,
    },
    /// Display detailed information on one or more volumes
    Inspect {
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove all volumes no container uses
    Prune {
        #[arg(short, long)]
        force: bool,
    },
}

fn labels_of(l: &[String]) -> Vec<(String, String)> {
    l.iter()
        .map(|l| {
            l.split_once('=')
                .map_or((l.clone(), String::new()), |(k, v)| (k.into(), v.into()))
        })
        .collect()
}

/// `--mount type=bind|volume|tmpfs,source=…,target=…[,readonly][,bind-propagation=…]
/// [,tmpfs-size=…][,tmpfs-mode=…]` as a `-v` spec (`false`) or a `--tmpfs` spec (`true`).
fn mount_spec(m: &str) -> Result<(bool, String), ApiError> {
    let bad = |why: &str| ApiError::InvalidArgument(format!("invalid --mount {m:?}: {why}"));
    let (mut kind, mut src, mut dst) = ("volume", None, None);
    let (mut ro, mut prop, mut tmpfs_opts) = (false, None, Vec::new());
    for kv in m.split(',') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "type" => kind = v,
            "source" | "src" => src = Some(v),
            "target" | "destination" | "dst" => dst = Some(v),
            "readonly" | "ro" => ro = !matches!(v, "false" | "0"),
            "bind-propagation" => prop = Some(v),
            "tmpfs-size" => tmpfs_opts.push(format!("size={v}")),
            "tmpfs-mode" => tmpfs_opts.push(format!("mode={v}")),
            _ => return Err(bad(&format!("unknown option {k}"))),
        }
    }
    let dst = dst.ok_or_else(|| bad("a target is required"))?;
    match kind {
        "tmpfs" => Ok((true, format!("{dst}:{}", tmpfs_opts.join(",")))),
        "bind" | "volume" => {
            let src = src.ok_or_else(|| bad("a source is required"))?;
            if kind == "bind" && !std::path::Path::new(src).exists() {
                return Err(bad(&format!("bind source path does not exist: {src}")));
            }
            let mut opts = vec![if ro { "ro" } else { "rw" }.to_owned()];
            opts.extend(prop.map(str::to_owned));
            Ok((false, format!("{src}:{dst}:{}", opts.join(","))))
        }
        _ => Err(bad("type must be bind, volume or tmpfs")),
    }
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Run in the background and print the container ID
    #[arg(short, long)]
    detach: bool,
    /// Remove the container when it exits
    #[arg(long)]
    rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    name: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Keep STDIN open
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    tty: bool,
    /// Working directory inside the container
    #[arg(short, long)]
    workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    user: Option<String>,
    /// Container host name
    #[arg(long)]
    hostname: Option<String>,
    /// Memory limit (e.g. 512m, 2g)
    #[arg(short, long)]
    memory: Option<String>,
    /// Memory plus swap limit; -1 for unlimited swap
    #[arg(long)]
    memory_swap: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    cpus: Option<f64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long)]
    cpu_shares: Option<u64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Tune container pids limit (-1 for unlimited)
    #[arg(long)]
    pids_limit: Option<i64>,
    /// Add Linux capabilities
    #[arg(long)]
    cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long)]
    cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    privileged: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    read_only: bool,
    /// Security options (no-new-privileges, seccomp=unconfined, seccomp=PROFILE.json)
    #[arg(long)]
    security_opt: Vec<String>,
    /// Restart policy (no, always, unless-stopped, on-failure[:N])
    #[arg(long, default_value = "no")]
    restart: String,
    /// Connect a container to a network (bridge, none, host, container:NAME, or a network's name)
    #[arg(long, alias = "net", default_value = "bridge")]
    network: String,
    /// Add a network-scoped alias for the container
    #[arg(long)]
    network_alias: Vec<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    entrypoint: Option<String>,
    /// Seconds to wait before killing the container on stop
    #[arg(long)]
    stop_timeout: Option<u32>,
    /// Signal to stop the container
    #[arg(long)]
    stop_signal: Option<String>,
    /// Bind mount a host path or a named volume (/host:/container[:ro], name:/container[:ro])
    #[arg(short, long = "volume")]
    volume: Vec<String>,
    /// Attach a filesystem mount (type=bind|volume|tmpfs,source=…,target=…[,readonly])
    #[arg(long)]
    mount: Vec<String>,
    /// Mount a tmpfs directory (/path[:options])
    #[arg(long)]
    tmpfs: Vec<String>,
    /// Publish a container's port(s) to the host ([IP:][HOST:]CONTAINER[/tcp|udp])
    #[arg(short, long)]
    publish: Vec<String>,
    /// Publish all exposed ports to free host ports
    #[arg(short = 'P', long)]
    publish_all: bool,
    /// Set metadata on a container (key=value)
    #[arg(short, long)]
    label: Vec<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    platform: Option<String>,
    image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

impl RunArgs {
    fn config(self) -> Result<ContainerConfig, ApiError> {
        let size = |what: &str, v: &str| {
            crate::console::parse_size(v).ok_or_else(|| {
                ApiError::InvalidArgument(format!("invalid {what} {v:?}: use a size like 512m"))
            })
        };
        let memory = self
            .memory
            .as_deref()
            .map(|m| size("--memory", m))
            .transpose()?;
        let (mut volume, mut tmpfs) = (self.volume, self.tmpfs);
        for m in &self.mount {
            match mount_spec(m)? {
                (true, t) => tmpfs.push(t),
                (false, v) => volume.push(v),
            }
        }
        let memory_swap = match self.memory_swap.as_deref() {
            None => None,
            Some("-1") => Some(-1),
            Some(v) => Some(size("--memory-swap", v)? as i64),
        };
        Ok(ContainerConfig {
            image: ImageRef(self.image),
            name: self.name,
            cmd: self.command,
            entrypoint: self
                .entrypoint
                .map(|e| if e.is_empty() { vec![] } else { vec![e] }),
            env: self.env,
            workdir: self.workdir,
            user: self.user,
            hostname: self.hostname,
            tty: self.tty,
            open_stdin: self.interactive,
            memory,
            memory_swap,
            cpus: self.cpus,
            cpu_shares: self.cpu_shares,
            cpuset_cpus: self.cpuset_cpus,
            pids_limit: self.pids_limit,
            cap_add: self.cap_add,
            cap_drop: self.cap_drop,
            privileged: self.privileged,
            read_only: self.read_only,
            security_opt: self.security_opt,
            restart: self.restart.parse().map_err(ApiError::InvalidArgument)?,
            network: self.network.parse().map_err(ApiError::InvalidArgument)?,
            publish: self.publish,
            publish_all: self.publish_all,
            network_aliases: self.network_alias,
            volumes: volume,
            tmpfs,
            labels: self
                .label
                .iter()
                .map(|l| {
                    l.split_once('=')
                        .map_or((l.clone(), String::new()), |(k, v)| (k.into(), v.into()))
                })
                .collect(),
            stop_timeout: self.stop_timeout,
            stop_signal: self.stop_signal,
            auto_remove: self.rm,
            platform: self.platform,
            ..Default::default()
        })
    }
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
    if let Some(host) = &cli.host {
        if cli.root.is_some() || cli.policy.is_some() {
            return Err(fail(
                "--host uses the remote engine's root and policy: drop --root and --policy",
            ));
        }
        return Engine::connect(host).map_err(fail);
    }
    Engine::open(EngineOptions {
        root: cli.root.clone(),
        policy: cli.policy.clone(),
    })
    .map_err(fail)
}

async fn run(cli: Cli) -> ExitCode {
    // The policy commands work on the policy alone (and must work when it is invalid).
    if let Some(Sub::Policy(p)) = cli.command {
        return policy_command(cli.policy.as_deref(), p);
    }
    let engine = match open_engine(&cli) {
        Ok(e) => e,
        Err(code) => return code,
    };
    berth::runtime::trace_time("cli: engine open");
    let Some(cmd) = cli.command else {
        let label = engine.label();
        let config = match crate::console::config::default_path() {
            Some(p) => match crate::console::config::Config::load(&p) {
                Ok(c) => c,
                Err(e) => return fail(format!("invalid console config {e}")),
            },
            None => Default::default(),
        };
        return match crate::console::run(engine, label, config).await {
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
            drop(out);
            let (stop, printer) = transfer_printer(engine, &image);
            let reply = submit(
                engine,
                Command::ImagePull {
                    reference: ImageRef(image.clone()),
                    platform,
                },
            )
            .await;
            let _ = stop.send(());
            let _ = printer.await;
            if let Reply::ImageId(id) = reply? {
                println!("Image ID: {id}\nStatus: pulled {image}");
            }
        }
        Sub::Build {
            tags,
            file,
            build_args,
            no_cache,
            target,
            quiet,
            context,
        } => {
            drop(out);
            let build_args = build_args
                .iter()
                .map(|a| match a.split_once('=') {
                    Some((k, v)) => Ok((k.to_owned(), v.to_owned())),
                    // `--build-arg KEY` takes the value from the environment, as docker does.
                    None => std::env::var(a).map(|v| (a.clone(), v)).map_err(|_| {
                        ApiError::InvalidArgument(format!(
                            "--build-arg {a}: not KEY=VALUE and not set in the environment"
                        ))
                    }),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let context = std::path::absolute(&context).map_err(|e| {
                ApiError::InvalidArgument(format!("context {}: {e}", context.display()))
            })?;
            let dockerfile = file.map(|f| std::path::absolute(&f).unwrap_or(f));
            let (stop, printer) = build_printer(engine, quiet);
            let reply = submit(
                engine,
                Command::ImageBuild {
                    config: Box::new(berth::api::BuildConfig {
                        context,
                        dockerfile,
                        tags: tags.clone(),
                        build_args,
                        no_cache,
                        target,
                    }),
                },
            )
            .await;
            let _ = stop.send(());
            let _ = printer.await;
            if let Reply::ImageId(id) = reply? {
                if quiet {
                    println!("{id}");
                } else {
                    println!("Successfully built {}", id.short());
                    for t in &tags {
                        println!("Successfully tagged {t}");
                    }
                }
            }
        }
        Sub::Push { image } => {
            drop(out);
            let (stop, printer) = transfer_printer(engine, &image);
            let reply = submit(
                engine,
                Command::ImagePush {
                    reference: ImageRef(image.clone()),
                },
            )
            .await;
            let _ = stop.send(());
            let _ = printer.await;
            if let Reply::ImageId(d) = reply? {
                println!("{image}: digest: {d}");
            }
        }
        Sub::Tag { source, target } => {
            submit(
                engine,
                Command::ImageTag {
                    source: ImageRef(source),
                    target: ImageRef(target),
                },
            )
            .await?;
        }
        Sub::History { image } => {
            let Reply::Json(serde_json::Value::Array(rows)) = submit(
                engine,
                Command::ImageHistory {
                    reference: ImageRef(image),
                },
            )
            .await?
            else {
                return Err(unexpected());
            };
            let _ = writeln!(
                out,
                "{:<14} {:<60} {:>9}  COMMENT",
                "CREATED", "CREATED BY", "SIZE"
            );
            let now = now();
            for r in rows {
                let created = r["Created"]
                    .as_i64()
                    .filter(|c| *c > 0)
                    .map(|c| format!("{} ago", crate::console::view::human_duration(now - c)))
                    .unwrap_or_else(|| "<missing>".into());
                let by = truncate(r["CreatedBy"].as_str().unwrap_or_default(), 60);
                let size = crate::console::view::human_size(r["Size"].as_u64().unwrap_or(0));
                let _ = writeln!(
                    out,
                    "{created:<14} {by:<60} {size:>9}  {}",
                    r["Comment"].as_str().unwrap_or_default()
                );
            }
        }
        Sub::Save { output, images } => {
            let references = images.into_iter().map(ImageRef).collect();
            match output {
                Some(path) => {
                    submit(engine, Command::ImageSave { references, path }).await?;
                }
                None => {
                    // The engine writes files; stream a private temp file to stdout.
                    let tmp = tempfile_in(engine)?;
                    submit(
                        engine,
                        Command::ImageSave {
                            references,
                            path: tmp.clone(),
                        },
                    )
                    .await?;
                    let r =
                        std::fs::File::open(&tmp).and_then(|mut f| std::io::copy(&mut f, &mut out));
                    let _ = std::fs::remove_file(&tmp);
                    r.map_err(|e| ApiError::engine("writing the archive to standard output", e))?;
                }
            }
        }
        Sub::Load { input } => {
            let (path, tmp) = match input {
                Some(p) => (p, None),
                None => {
                    let tmp = tempfile_in(engine)?;
                    let r = std::fs::File::create(&tmp)
                        .and_then(|mut f| std::io::copy(&mut std::io::stdin().lock(), &mut f));
                    if let Err(e) = r {
                        let _ = std::fs::remove_file(&tmp);
                        return Err(ApiError::engine(
                            "reading the archive from standard input",
                            e,
                        ));
                    }
                    (tmp.clone(), Some(tmp))
                }
            };
            let reply = submit(engine, Command::ImageLoad { path }).await;
            if let Some(t) = tmp {
                let _ = std::fs::remove_file(t);
            }
            if let Reply::Loaded(images) = reply? {
                for (id, names) in images {
                    if names.is_empty() {
                        let _ = writeln!(out, "Loaded image ID: {id}");
                    }
                    for n in names {
                        let _ = writeln!(out, "Loaded image: {n}");
                    }
                }
            }
        }
        Sub::Import { file, reference } => {
            if let Reply::ImageId(id) = submit(
                engine,
                Command::ImageImport {
                    path: file,
                    reference: reference.map(ImageRef),
                },
            )
            .await?
            {
                let _ = writeln!(out, "{id}");
            }
        }
        Sub::Login {
            username,
            password_stdin,
            password,
            registry,
        } => {
            let password = match (password, password_stdin) {
                (Some(p), false) => p,
                (None, true) => {
                    let mut p = String::new();
                    std::io::stdin()
                        .read_line(&mut p)
                        .map_err(|e| ApiError::engine("reading the password", e))?;
                    p.trim_end_matches(['\n', '\r']).to_owned()
                }
                _ => {
                    return Err(ApiError::InvalidArgument(
                        "give exactly one of --password and --password-stdin".into(),
                    ));
                }
            };
            submit(
                engine,
                Command::RegistryLogin {
                    registry,
                    username,
                    password,
                },
            )
            .await?;
            let _ = writeln!(out, "Login Succeeded");
        }
        Sub::Image(ImageSub::Ls) => {
            return Box::pin(one_shot(engine, Sub::Images { quiet: false })).await;
        }
        Sub::Image(ImageSub::Inspect { images }) => {
            let mut all = Vec::new();
            for i in images {
                if let Reply::Json(v) = submit(
                    engine,
                    Command::ImageInspect {
                        reference: ImageRef(i),
                    },
                )
                .await?
                {
                    all.push(v);
                }
            }
            write_json(out.by_ref(), &all);
        }
        Sub::Image(ImageSub::Prune { all, force }) => {
            if !force {
                use std::io::IsTerminal;
                if !std::io::stdin().is_terminal() {
                    return Err(ApiError::InvalidArgument(
                        "not a terminal: use --force to prune without asking".into(),
                    ));
                }
                eprint!(
                    "This removes {} images not used by any container. Continue? [y/N] ",
                    if all { "all" } else { "dangling" }
                );
                let mut a = String::new();
                let _ = std::io::stdin().read_line(&mut a);
                if !matches!(a.trim(), "y" | "Y" | "yes") {
                    return Ok(ExitCode::SUCCESS);
                }
            }
            if let Reply::Pruned { removed, freed } =
                submit(engine, Command::ImagePrune { all }).await?
            {
                for r in &removed {
                    let _ = writeln!(out, "deleted: {r}");
                }
                let _ = writeln!(
                    out,
                    "Total reclaimed space: {}",
                    crate::console::view::human_size(freed)
                );
            }
        }
        Sub::Run(args) => {
            drop(out);
            let (detach, interactive, tty, rm) = (args.detach, args.interactive, args.tty, args.rm);
            let config = args.config()?;
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
            berth::runtime::trace_time("cli: created");
            if detach {
                submit(engine, Command::ContainerStart { id: id.clone() }).await?;
                println!("{id}");
                return Ok(ExitCode::SUCCESS);
            }
            // Attach first, so no early output is lost; then start; then wait.
            let Reply::Io(session) = submit(
                engine,
                Command::ContainerAttach {
                    id: id.clone(),
                    stdin: interactive,
                },
            )
            .await?
            else {
                return Err(unexpected());
            };
            let raw = crate::stdio::RawMode::enable(tty);
            if tty && let Some((h, w)) = crate::stdio::terminal_size() {
                let _ = submit(
                    engine,
                    Command::ContainerResize {
                        id: id.clone(),
                        height: h,
                        width: w,
                    },
                )
                .await;
            }
            let condition = if rm {
                berth::api::WaitCondition::Removed
            } else {
                berth::api::WaitCondition::NextExit
            };
            let waiter = {
                let engine = engine.clone();
                let id = id.clone();
                tokio::spawn(async move {
                    engine
                        .submit(Command::ContainerWait { id, condition })
                        .await
                })
            };
            if let Err(e) = submit(engine, Command::ContainerStart { id: id.clone() }).await {
                drop(raw);
                return Err(e);
            }
            berth::runtime::trace_time("cli: started");
            crate::stdio::pump(session, interactive).await;
            berth::runtime::trace_time("cli: output ended");
            let code = match waiter.await {
                Ok(Ok(Reply::ExitCode(c))) => c,
                Ok(Err(e)) => return Err(e),
                _ => return Err(unexpected()),
            };
            drop(raw);
            berth::runtime::trace_time("cli: waited");
            return Ok(ExitCode::from(code.clamp(0, 255) as u8));
        }
        Sub::Create(args) => {
            let config = args.config()?;
            if let Reply::ContainerId(id) = submit(
                engine,
                Command::ContainerCreate {
                    config: Box::new(config),
                    pull: true,
                },
            )
            .await?
            {
                let _ = writeln!(out, "{id}");
            }
        }
        Sub::Start { attach, containers } => {
            for c in containers {
                let id = ContainerId(c.clone());
                if attach {
                    drop(out);
                    let Reply::Io(session) = submit(
                        engine,
                        Command::ContainerAttach {
                            id: id.clone(),
                            stdin: false,
                        },
                    )
                    .await?
                    else {
                        return Err(unexpected());
                    };
                    submit(engine, Command::ContainerStart { id: id.clone() }).await?;
                    crate::stdio::pump(session, false).await;
                    if let Reply::ExitCode(code) = submit(
                        engine,
                        Command::ContainerWait {
                            id,
                            condition: berth::api::WaitCondition::NotRunning,
                        },
                    )
                    .await?
                    {
                        return Ok(ExitCode::from(code.clamp(0, 255) as u8));
                    }
                    return Ok(ExitCode::SUCCESS);
                }
                match submit(engine, Command::ContainerStart { id }).await {
                    Ok(_) | Err(ApiError::NotModified(_)) => {}
                    Err(e) => return Err(e),
                }
                let _ = writeln!(out, "{c}");
            }
        }
        // One command per named container, printed back as docker does; the commands are the
        // ones `berth policy explain` shows for the same line.
        sub @ (Sub::Restart { .. }
        | Sub::Kill { .. }
        | Sub::Pause { .. }
        | Sub::Unpause { .. }
        | Sub::Stop { .. }
        | Sub::Rm { .. }) => {
            for (_, cmd) in commands_of(sub)? {
                let name = cmd.target().unwrap_or_default();
                submit(engine, cmd).await?;
                let _ = writeln!(out, "{name}");
            }
        }
        Sub::Rename { container, name } => {
            submit(
                engine,
                Command::ContainerRename {
                    id: ContainerId(container),
                    name,
                },
            )
            .await?;
        }
        Sub::Wait { containers } => {
            for c in containers {
                if let Reply::ExitCode(code) = submit(
                    engine,
                    Command::ContainerWait {
                        id: ContainerId(c),
                        condition: berth::api::WaitCondition::NotRunning,
                    },
                )
                .await?
                {
                    let _ = writeln!(out, "{code}");
                }
            }
        }
        Sub::Top { container } => {
            if let Reply::Json(v) = submit(
                engine,
                Command::ContainerTop {
                    id: ContainerId(container),
                },
            )
            .await?
            {
                let titles: Vec<&str> = v["Titles"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str())
                    .collect();
                let _ = writeln!(out, "{}", titles.join("\t"));
                for p in v["Processes"].as_array().into_iter().flatten() {
                    let cols: Vec<&str> = p
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|t| t.as_str())
                        .collect();
                    let _ = writeln!(out, "{}", cols.join("\t"));
                }
            }
        }
        Sub::Stats {
            no_stream,
            containers,
        } => {
            drop(out);
            let ids: Vec<String> = if containers.is_empty() {
                let Reply::Containers(list) =
                    submit(engine, Command::ContainerList { all: false }).await?
                else {
                    return Err(unexpected());
                };
                list.into_iter().map(|c| c.id.0).collect()
            } else {
                containers
            };
            print_stats(engine, ids, !no_stream).await?;
        }
        Sub::Container(ContainerSub::Prune { force }) => {
            if !force && !confirm("This removes all stopped containers.") {
                return Ok(ExitCode::SUCCESS);
            }
            if let Reply::Pruned { removed, .. } = submit(engine, Command::ContainerPrune).await? {
                for r in removed {
                    let _ = writeln!(out, "{r}");
                }
            }
        }
        Sub::Network(n) => return network_cmd(engine, n).await,
        Sub::Volume(v) => return volume_cmd(engine, v).await,
        Sub::Container(ContainerSub::Ls { all, quiet }) => {
            return Box::pin(one_shot(engine, Sub::Ps { all, quiet })).await;
        }
        Sub::Container(ContainerSub::Inspect { containers }) => {
            let mut all = Vec::new();
            for c in containers {
                if let Reply::Json(v) =
                    submit(engine, Command::ContainerInspect { id: ContainerId(c) }).await?
                {
                    all.push(v);
                }
            }
            write_json(out.by_ref(), &all);
        }
        Sub::Rmi { force, images } => {
            for i in images {
                if let Reply::ImagesDeleted(list) = submit(
                    engine,
                    Command::ImageRemove {
                        reference: ImageRef(i.clone()),
                        force,
                    },
                )
                .await?
                {
                    for d in list {
                        let _ = match d {
                            berth::api::ImageDeleted::Untagged(t) => writeln!(out, "Untagged: {t}"),
                            berth::api::ImageDeleted::Deleted(id) => writeln!(out, "Deleted: {id}"),
                        };
                    }
                }
            }
        }
        Sub::Logs {
            follow,
            tail,
            timestamps,
            since,
            container,
        } => {
            drop(out);
            let tail =
                match tail.as_deref() {
                    None | Some("all") => None,
                    Some(n) => Some(n.parse().map_err(|_| {
                        ApiError::InvalidArgument(format!("--tail {n}: not a number"))
                    })?),
                };
            let since = since.as_deref().map(parse_since).transpose()?;
            let options = LogOptions {
                follow,
                tail,
                since,
                timestamps,
                stdout: true,
                stderr: true,
                ..Default::default()
            };
            let Reply::Logs(mut rx) = submit(
                engine,
                Command::ContainerLogs {
                    id: ContainerId(container),
                    options,
                },
            )
            .await?
            else {
                return Err(unexpected());
            };
            while let Some(l) = rx.recv().await {
                let ts = if timestamps {
                    format!("{} ", crate::console::view::rfc3339(l.time))
                } else {
                    String::new()
                };
                let r = match l.stream {
                    berth::api::Stream::Stdout => {
                        writeln!(std::io::stdout().lock(), "{ts}{}", l.line)
                    }
                    berth::api::Stream::Stderr => {
                        writeln!(std::io::stderr().lock(), "{ts}{}", l.line)
                    }
                };
                if r.is_err() {
                    break;
                }
            }
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
            write_json(out.by_ref(), &all);
        }
        Sub::Exec {
            interactive,
            tty,
            user,
            env,
            workdir,
            detach,
            container,
            command,
        } => {
            drop(out);
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
            let Reply::ExecId(exec_id) = submit(
                engine,
                Command::ExecCreate {
                    config: Box::new(config),
                },
            )
            .await?
            else {
                return Err(unexpected());
            };
            let console_size = if tty {
                crate::stdio::terminal_size()
            } else {
                None
            };
            let reply = submit(
                engine,
                Command::ExecStart {
                    exec_id: exec_id.clone(),
                    detach,
                    console_size,
                },
            )
            .await?;
            if let Reply::Io(session) = reply {
                let raw = crate::stdio::RawMode::enable(tty);
                crate::stdio::pump(session, interactive).await;
                drop(raw);
            }
            if detach {
                return Ok(ExitCode::SUCCESS);
            }
            // The output closes only once the exit code is recorded.
            return match submit(engine, Command::ExecInspect { exec_id }).await? {
                Reply::Exec(berth::api::ExecInfo {
                    exit_code: Some(code),
                    ..
                }) => Ok(ExitCode::from(code.clamp(0, 255) as u8)),
                _ => Err(ApiError::engine(
                    "exec",
                    "the process's exit code is unknown",
                )),
            };
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
        Sub::System(SystemSub::Check { repair }) => {
            let Reply::Json(v) = submit(engine, Command::SystemCheck { repair }).await? else {
                return Err(unexpected());
            };
            write_json(out.by_ref(), &v);
            let consistent = v["corrupt_blobs"].as_array().is_some_and(|a| a.is_empty())
                && v["missing_blobs"].as_array().is_some_and(|a| a.is_empty());
            if !consistent && !repair {
                return Ok(ExitCode::from(1));
            }
        }
        Sub::Info => {
            let Reply::Info(i) = submit(engine, Command::SystemInfo).await? else {
                return Err(unexpected());
            };
            write_json(out.by_ref(), &i);
        }
        Sub::Policy(_) => unreachable!("run() handles `policy` before opening the engine"),
        Sub::Serve {
            socket,
            tcp,
            tlscacert,
            tlscert,
            tlskey,
        } => {
            drop(out);
            let tcp = tcp.map(|addr| {
                let d = berth::api::http::TlsFiles::default();
                berth::api::http::TcpOptions {
                    addr,
                    tls: berth::api::http::TlsFiles {
                        ca: tlscacert.unwrap_or(d.ca),
                        cert: tlscert.unwrap_or(d.cert),
                        key: tlskey.unwrap_or(d.key),
                    },
                }
            });
            let opts = berth::api::http::ServeOptions {
                socket,
                tcp,
                ..Default::default()
            };
            let server = berth::api::http::Server::bind(&opts)
                .map_err(|e| ApiError::engine("berth serve", e))?;
            eprintln!(
                "berth: serving the Docker Engine API on unix://{}",
                server.path().display()
            );
            if let Some(addr) = server.tcp_addr() {
                eprintln!(
                    "berth: serving the Docker Engine API on tcp://{addr} (TLS, client certificates required)"
                );
            }
            // What crashed berth processes left on the root goes, off the request path.
            if let Some(repair) = engine.repair_crash_debris() {
                tokio::spawn(async move {
                    match repair.await {
                        Ok(Ok(removed)) if removed.is_empty() => {
                            eprintln!("berth: start-up clean-up: no crash debris");
                        }
                        Ok(Ok(removed)) => eprintln!(
                            "berth: start-up clean-up: removed {} items of crash debris: {}",
                            removed.len(),
                            removed.join(", ")
                        ),
                        Ok(Err(e)) => eprintln!("berth: start-up clean-up failed: {e}"),
                        Err(e) => eprintln!("berth: start-up clean-up failed: {e}"),
                    }
                });
            }
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

/// Print a line each time a layer of `reference`'s transfer changes phase, as docker does;
/// after `stop`, print what is queued (the last layers' "Pull complete") and end.
fn transfer_printer(
    engine: &Engine,
    reference: &str,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let reference = reference.to_owned();
    let mut last: std::collections::HashMap<String, berth::api::TransferPhase> = Default::default();
    event_printer(engine, move |e| {
        if let Event::Transfer {
            reference: r,
            layer,
            phase,
            ..
        } = e
            && r.0 == reference
            && last.insert(layer.0.clone(), phase) != Some(phase)
        {
            let text = match phase {
                berth::api::TransferPhase::Waiting => "Waiting",
                berth::api::TransferPhase::Downloading => "Downloading",
                berth::api::TransferPhase::Verifying => "Verifying Checksum",
                berth::api::TransferPhase::Extracting => "Extracting",
                berth::api::TransferPhase::Complete => "Pull complete",
                berth::api::TransferPhase::AlreadyExists => "Already exists",
                berth::api::TransferPhase::Pushing => "Pushing",
            };
            println!("{}: {text}", layer.short());
        }
    })
}

/// Print build output lines as they come; after `stop`, print what is queued and end.
fn build_printer(
    engine: &Engine,
    quiet: bool,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    event_printer(engine, move |e| {
        if let Event::BuildOutput { line } = e
            && !quiet
        {
            println!("{line}");
        }
    })
}

/// Hand every engine event to `show` as it comes; after the returned sender fires, what is
/// already queued too, then end (a reply can arrive before its last events are shown).
fn event_printer(
    engine: &Engine,
    mut show: impl FnMut(Event) + Send + 'static,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let rx = engine.subscribe();
    let (tx, mut stop) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let Ok(mut rx) = rx else { return };
        loop {
            tokio::select! {
                r = rx.recv() => match r {
                    Ok(rec) => show(rec.event),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                _ = &mut stop => break,
            }
        }
        while let Ok(rec) = rx.try_recv() {
            show(rec.event);
        }
    });
    (tx, task)
}

/// A fresh path in the state root for an archive on its way in or out.
fn tempfile_in(engine: &Engine) -> Result<PathBuf, ApiError> {
    // Local: the engine's own temp dir (same filesystem as its store); remote: the system's.
    let dir = engine
        .root()
        .map_or_else(std::env::temp_dir, |r| r.path().join("tmp"));
    std::fs::create_dir_all(&dir).map_err(|e| ApiError::engine("creating a temp dir", e))?;
    Ok(dir.join(format!("archive-{}-{:x}.tar", std::process::id(), now())))
}

/// Ask a yes/no question on the terminal; no terminal means no.
fn confirm(what: &str) -> bool {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        eprintln!("berth: not a terminal: use --force");
        return false;
    }
    eprint!("{what} Continue? [y/N] ");
    let mut a = String::new();
    let _ = std::io::stdin().read_line(&mut a);
    matches!(a.trim(), "y" | "Y" | "yes")
}

/// `--since`: RFC 3339, unix seconds, or a duration ago (`10s`, `42m`, `2h`).
fn parse_since(s: &str) -> Result<i64, ApiError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Ok(t.unix_timestamp_nanos() as i64);
    }
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs * 1_000_000_000);
    }
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let mult: i64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => {
            return Err(ApiError::InvalidArgument(format!(
                "--since {s:?}: use RFC 3339, unix seconds or a duration like 10m"
            )));
        }
    };
    let n: i64 = num
        .parse()
        .map_err(|_| ApiError::InvalidArgument(format!("--since {s:?}: not a duration")))?;
    Ok(now - n * mult * 1_000_000_000)
}

/// `berth stats`: a table of samples, once or refreshed.
async fn print_stats(engine: &Engine, ids: Vec<String>, stream: bool) -> Result<(), ApiError> {
    use crate::console::view::human_size;
    let mut rxs = Vec::new();
    for id in &ids {
        if let Reply::Stats(rx) = submit(
            engine,
            Command::ContainerStats {
                id: ContainerId(id.clone()),
                stream,
            },
        )
        .await?
        {
            rxs.push((id.clone(), rx));
        }
    }
    let header = format!(
        "{:<14} {:>7} {:>22} {:>7} {:>20} {:>20} {:>5}",
        "CONTAINER ID", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"
    );
    loop {
        let mut lines = vec![header.clone()];
        let mut any = false;
        for (id, rx) in &mut rxs {
            let Some(s) = rx.recv().await else { continue };
            any = true;
            let limit = s.memory_limit.unwrap_or(0);
            let pct = if limit > 0 {
                s.memory_bytes as f64 * 100.0 / limit as f64
            } else {
                0.0
            };
            lines.push(format!(
                "{:<14} {:>6.2}% {:>22} {:>6.2}% {:>20} {:>20} {:>5}",
                &id[..id.len().min(12)],
                s.cpu_percent,
                format!(
                    "{} / {}",
                    human_size(s.memory_bytes),
                    if limit > 0 {
                        human_size(limit)
                    } else {
                        "-".into()
                    }
                ),
                pct,
                format!("{} / {}", human_size(s.net_rx), human_size(s.net_tx)),
                format!(
                    "{} / {}",
                    human_size(s.block_read),
                    human_size(s.block_write)
                ),
                s.pids
            ));
        }
        if !any {
            return Ok(());
        }
        let mut o = std::io::stdout().lock();
        if stream {
            let _ = write!(o, "\x1b[2J\x1b[H");
        }
        let _ = writeln!(o, "{}", lines.join("\n"));
        let _ = o.flush();
        if !stream {
            return Ok(());
        }
    }
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

// ---- berth policy ----

fn policy_command(in_effect: Option<&std::path::Path>, cmd: PolicySub) -> ExitCode {
    let policy = |file: Option<&std::path::Path>| berth::api::load_policy(file.or(in_effect));
    match cmd {
        PolicySub::Check { file } => match policy(file.as_deref()) {
            Ok(p) => {
                let n = p.rule_count();
                println!(
                    "{}: {n} rule{}, valid",
                    p.origin(),
                    if n == 1 { "" } else { "s" }
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        PolicySub::Explain { command } => {
            let p = match policy(None) {
                Ok(p) => p,
                Err(e) => return fail(e),
            };
            let cmds = match Cli::try_parse_from(std::iter::once("berth".to_owned()).chain(command))
            {
                Ok(Cli {
                    command: Some(sub), ..
                }) => commands_of(sub),
                Ok(_) => Err(ApiError::InvalidArgument("no command to explain".into())),
                Err(e) => Err(ApiError::InvalidArgument(e.to_string())),
            };
            let cmds = match cmds {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            let subject = berth::security::Subject::current();
            println!("policy {}", p.origin());
            for (note, cmd) in cmds {
                let e = p.explain(&subject, &berth::api::request_of(&cmd));
                if let Some(note) = note {
                    println!("{note}:");
                }
                println!("{e}");
            }
            ExitCode::SUCCESS
        }
    }
}

/// `run`/`create`: the create (which pulls a missing image) and that pull.
fn create_commands(args: RunArgs) -> Result<Vec<(Option<&'static str>, Command)>, ApiError> {
    let config = args.config()?;
    let pull = Command::ImagePull {
        reference: config.image.clone(),
        platform: config.platform.clone(),
    };
    Ok(vec![
        (
            None,
            Command::ContainerCreate {
                config: Box::new(config),
                pull: true,
            },
        ),
        (Some("if the image is not present, the implicit pull"), pull),
    ])
}

/// The commands a command line submits, in order, as the CLI would build them (for `policy
/// explain`), each with a note when it only happens in some cases.
fn commands_of(sub: Sub) -> Result<Vec<(Option<&'static str>, Command)>, ApiError> {
    let each = |names: Vec<String>, f: &dyn Fn(String) -> Command| {
        names.into_iter().map(|n| (None, f(n))).collect::<Vec<_>>()
    };
    let id = ContainerId;
    Ok(match sub {
        Sub::Run(args) => {
            let mut v = create_commands(args)?;
            v.push((
                Some("then run starts it"),
                Command::ContainerStart {
                    id: id("(the new container)".into()),
                },
            ));
            v
        }
        Sub::Create(args) => create_commands(args)?,
        Sub::Pull { image, platform } => vec![(
            None,
            Command::ImagePull {
                reference: ImageRef(image),
                platform,
            },
        )],
        Sub::Push { image } => vec![(
            None,
            Command::ImagePush {
                reference: ImageRef(image),
            },
        )],
        Sub::Tag { source, target } => vec![(
            None,
            Command::ImageTag {
                source: ImageRef(source),
                target: ImageRef(target),
            },
        )],
        Sub::Rmi { force, images } => each(images, &|i| Command::ImageRemove {
            reference: ImageRef(i),
            force,
        }),
        Sub::Rm { force, containers } => each(containers, &|c| Command::ContainerRemove {
            id: id(c),
            force,
        }),
        Sub::Start { containers, .. } => {
            each(containers, &|c| Command::ContainerStart { id: id(c) })
        }
        Sub::Stop { time, containers } => each(containers, &|c| Command::ContainerStop {
            id: id(c),
            timeout: time,
        }),
        Sub::Restart { time, containers } => each(containers, &|c| Command::ContainerRestart {
            id: id(c),
            timeout: time,
        }),
        Sub::Kill { signal, containers } => each(containers, &|c| Command::ContainerKill {
            id: id(c),
            signal: signal.clone(),
        }),
        Sub::Pause { containers } => each(containers, &|c| Command::ContainerPause { id: id(c) }),
        Sub::Unpause { containers } => {
            each(containers, &|c| Command::ContainerUnpause { id: id(c) })
        }
        Sub::Rename { container, name } => vec![(
            None,
            Command::ContainerRename {
                id: id(container),
                name,
            },
        )],
        Sub::Exec {
            interactive,
            tty,
            user,
            env,
            workdir,
            container,
            command,
            ..
        } => vec![(
            None,
            Command::ExecCreate {
                config: Box::new(berth::api::ExecConfig {
                    container: id(container),
                    cmd: command,
                    env,
                    user,
                    workdir,
                    tty,
                    stdin: interactive,
                    privileged: false,
                }),
            },
        )],
        Sub::Import { file, reference } => vec![(
            None,
            Command::ImageImport {
                path: file,
                reference: reference.map(ImageRef),
            },
        )],
        Sub::Load { input } => vec![(
            None,
            Command::ImageLoad {
                path: input.unwrap_or_else(|| "-".into()),
            },
        )],
        Sub::Save { output, images } => vec![(
            None,
            Command::ImageSave {
                references: images.into_iter().map(ImageRef).collect(),
                path: output.unwrap_or_else(|| "-".into()),
            },
        )],
        Sub::Login {
            username, registry, ..
        } => vec![(
            None,
            Command::RegistryLogin {
                registry,
                username,
                password: String::new(),
            },
        )],
        Sub::Ps { all, .. } | Sub::Container(ContainerSub::Ls { all, .. }) => {
            vec![(None, Command::ContainerList { all })]
        }
        Sub::Images { .. } | Sub::Image(ImageSub::Ls) => vec![(None, Command::ImageList)],
        Sub::Image(ImageSub::Prune { all, .. }) => vec![(None, Command::ImagePrune { all })],
        Sub::Container(ContainerSub::Prune { .. }) => vec![(None, Command::ContainerPrune)],
        Sub::Version => vec![(None, Command::SystemVersion)],
        Sub::Info => vec![(None, Command::SystemInfo)],
        other => {
            return Err(ApiError::InvalidArgument(format!(
                "`policy explain` covers the commands that change or list containers and images; not {}",
                format!("{other:?}")
                    .split([' ', '(', '{'])
                    .next()
                    .unwrap_or_default()
                    .to_lowercase()
            )));
        }
    })
}

async fn network_cmd(engine: &Engine, cmd: NetworkSub) -> Result<ExitCode, ApiError> {
    let mut out = std::io::stdout().lock();
    match cmd {
        NetworkSub::Create {
            subnet,
            driver,
            label,
            name,
        } => {
            if driver != "bridge" {
                return Err(ApiError::InvalidArgument(format!(
                    "network driver {driver:?} is not supported (only bridge)"
                )));
            }
            let cmd = Command::NetworkCreate {
                name,
                subnet,
                labels: labels_of(&label),
            };
            if let Reply::Network(n) = submit(engine, cmd).await? {
                let _ = writeln!(out, "{}", n.id);
            }
        }
        NetworkSub::Ls { quiet } => {
            let Reply::Networks(list) = submit(engine, Command::NetworkList).await? else {
                return Err(unexpected());
            };
            if !quiet {
                let _ = writeln!(
                    out,
                    "{:<12}   {:<20} {:<8} {:<18} CONTAINERS",
                    "NETWORK ID", "NAME", "DRIVER", "SUBNET"
                );
            }
            for n in list {
                if quiet {
                    let _ = writeln!(out, "{}", &n.id[..12]);
                } else {
                    let _ = writeln!(
                        out,
                        "{:<12}   {:<20} {:<8} {:<18} {}",
                        &n.id[..12],
                        truncate(&n.name, 20),
                        n.driver,
                        n.subnet,
                        n.containers.len()
                    );
                }
            }
        }
        NetworkSub::Inspect { networks } => {
            let mut all = Vec::new();
            for name in networks {
                if let Reply::Network(n) = submit(engine, Command::NetworkInspect { name }).await? {
                    all.push(n);
                }
            }
            write_json(out.by_ref(), &all);
        }
        NetworkSub::Rm { networks } => {
            for name in networks {
                submit(engine, Command::NetworkRemove { name: name.clone() }).await?;
                let _ = writeln!(out, "{name}");
            }
        }
        NetworkSub::Connect { network, container } => {
            let container = ContainerId(container);
            submit(engine, Command::NetworkConnect { network, container }).await?;
        }
        NetworkSub::Disconnect {
            network, container, ..
        } => {
            let container = ContainerId(container);
            submit(engine, Command::NetworkDisconnect { network, container }).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn volume_cmd(engine: &Engine, cmd: VolumeSub) -> Result<ExitCode, ApiError> {
    let mut out = std::io::stdout().lock();
    match cmd {
        VolumeSub::Create { label, name } => {
            let cmd = Command::VolumeCreate {
                name,
                labels: labels_of(&label),
            };
            if let Reply::Volume(v) = submit(engine, cmd).await? {
                let _ = writeln!(out, "{}", v.name);
            }
        }
        VolumeSub::Ls { quiet } => {
            let Reply::Volumes(list) = submit(engine, Command::VolumeList).await? else {
                return Err(unexpected());
            };
            if !quiet {
                let _ = writeln!(out, "{:<8} VOLUME NAME", "DRIVER");
            }
            for v in list {
                if quiet {
                    let _ = writeln!(out, "{}", v.name);
                } else {
                    let _ = writeln!(out, "{:<8} {}", v.driver, v.name);
                }
            }
        }
        VolumeSub::Inspect { volumes } => {
            let mut all = Vec::new();
            for name in volumes {
                if let Reply::Volume(v) = submit(engine, Command::VolumeInspect { name }).await? {
                    all.push(v);
                }
            }
            write_json(out.by_ref(), &all);
        }
        VolumeSub::Rm { volumes } => {
            for name in volumes {
                submit(engine, Command::VolumeRemove { name: name.clone() }).await?;
                let _ = writeln!(out, "{name}");
            }
        }
        VolumeSub::Prune { force } => {
            if !force && !confirm("This removes all volumes not used by any container.") {
                return Ok(ExitCode::SUCCESS);
            }
            if let Reply::Pruned { removed, freed } = submit(engine, Command::VolumePrune).await? {
                let _ = writeln!(out, "Deleted Volumes:");
                for r in removed {
                    let _ = writeln!(out, "{r}");
                }
                let _ = writeln!(
                    out,
                    "Total reclaimed space: {}",
                    crate::console::view::human_size(freed)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `value` as indented JSON on a line of its own (what `inspect` commands print).
fn write_json(out: &mut impl Write, value: &impl serde::Serialize) {
    let _ = writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}
