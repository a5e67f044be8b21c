//! `converge`: serve, check, demo. Errors end here, logged once with their cause chain.

use std::process::ExitCode;

use clap::Parser;
use converge::settings::{CheckArgs, Cli, Command, Part, ServeArgs};
use converge::system::{self, System, SystemConfig};
use converge::workload::Client;
use runtime::Peers;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the system's allocator: a bench of queue mode at its ceiling spent
/// about a seventh of its time in glibc's malloc and free (many small, short-lived
/// allocations on many threads: request bodies, JSON values, futures).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // Crash points are armed from the FAILPOINTS variable, in builds that have them (tests).
    let _crash_points = fail::FailScenario::setup();
    let cli = Cli::parse();
    let quiet = matches!(
        cli.command,
        Command::Demo(_)
            | Command::Bench(_)
            | Command::Check(_)
            | Command::Drill(_)
            | Command::Soak(_)
            | Command::Replicas(_)
            | Command::DeadLetters(_)
    );
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new(if quiet { "error" } else { "info" })),
        )
        .with_writer(std::io::stderr)
        // A log that cannot be written (its disk full) must not take the service down:
        // reporting that error would print to stderr, and a failed print panics.
        .log_internal_errors(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Command::Serve(args) => serve(*args).await.map(|()| ExitCode::SUCCESS),
        Command::Up(args) => up(*args).await.map(|()| ExitCode::SUCCESS),
        Command::Check(args) => check(args).await,
        Command::Demo(args) => demo(args).await,
        Command::Bench(args) => bench(args).await,
        Command::Drill(args) => drill(*args).await,
        Command::Soak(args) => soak(*args).await,
        Command::Replicas(args) => replicas::run(args).await,
        Command::DeadLetters(args) => converge::dead_letters::run(args).await,
    };
    result.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        ExitCode::FAILURE
    })
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    converge::up::survive_file_size_limit();
    let mut config = SystemConfig::new(args.mode.into(), args.backends.location()?);
    config.transport = args.backends.transport();
    config.stats_standbys = args.backends.stats_replica_urls.clone();
    config.stats_read_policy = args.backends.stats_read_policy();
    config.retention = args.retention.retention();
    args.knobs.apply(&mut config);
    config.listen = args.listen;
    if let Some(secret) = &args.secret {
        runtime::http::check_secret(secret).map_err(|e| anyhow::anyhow!("--secret: {e}"))?;
        config.secret = secret.clone();
    }
    if let Some(instance) = &args.instance {
        config.instance = instance.clone();
    }
    if let Some(token) = &args.dashboard_token {
        config.dashboard_token = token.clone();
    }
    match args.service {
        None => {
            config.service_addrs = args.addrs.listen()?;
            let system = System::start(config.clone()).await?;
            tracing::info!(
                url = system.url,
                mode = %system.mode,
                data = config.location.describe("<service>"),
                transport = config.transport.name(),
                "serving"
            );
            // On stdout, not in the log: the link carries the dashboard's control token.
            println!("dashboard: {}", system.dashboard_link);
            system.run_until(shutdown_signal()).await
        }
        Some(part) => serve_part(part, &args, config).await,
    }
}

/// One part on its own: the other services are reached at the addresses given.
async fn serve_part(part: Part, args: &ServeArgs, config: SystemConfig) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.secret.is_some(),
        "--secret (or CONVERGE_SECRET) is required with --service: every process must share it"
    );
    let addrs = args.addrs.all();
    let url = |i: usize, name: &str| -> anyhow::Result<String> {
        let given =
            addrs[i].ok_or_else(|| anyhow::anyhow!("--{name}-addr is required with --service"))?;
        let urls: Vec<String> = given
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| format!("http://{a}"))
            .collect();
        anyhow::ensure!(!urls.is_empty(), "--{name}-addr names no address");
        Ok(urls.join(","))
    };
    let peers = Peers {
        account: url(0, "account")?,
        order: url(1, "order")?,
        payment: url(2, "payment")?,
        loyalty: url(3, "loyalty")?,
        stats: url(4, "stats")?,
    };
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let shutdown = CancellationToken::new();
    let tasks = match part.service() {
        Some(service) => {
            let app = system::build_service(
                service,
                config.service_config(service, peers),
                listener,
                shutdown.clone(),
            )
            .await?;
            app.tasks
        }
        None => {
            let mut dashboard = system::dashboard_config(&listener, &config, &peers, &shutdown)?;
            if let Some(url) = &args.supervisor_url {
                dashboard = dashboard.with_supervisor(url);
            }
            println!("dashboard: {}", dashboard.link());
            vec![system::gateway_task(
                listener,
                peers,
                config.secret.clone(),
                config.call_timeout,
                dashboard,
                shutdown.clone(),
            )]
        }
    };
    tracing::info!(part = ?part, listen = %args.listen, mode = %config.mode, "serving");
    let signal_token = shutdown.clone();
    let with_parent = std::env::var_os(converge::up::EXIT_WITH_PARENT).is_some();
    tokio::spawn(async move {
        if with_parent {
            tokio::select! {
                () = shutdown_signal() => {}
                () = converge::up::exit_with_parent() => {}
            }
        } else {
            shutdown_signal().await;
        }
        signal_token.cancel();
    });
    runtime::supervise::run_tasks(tasks, shutdown).await
}

/// `converge up`: every part as its own process, until Ctrl-C.
async fn up(args: converge::settings::UpArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.instances == 1 || args.backends.database_url.is_some(),
        "--instances {} needs PostgreSQL (--database-url): the instances of a service share its \
         database, and a SQLite file is one process's",
        args.instances
    );
    // Checked here, so that a bad URL fails once, not in eleven processes.
    args.backends.location()?;
    let mut forwarded = args.backends.to_args();
    forwarded.extend(args.knobs.to_args());
    forwarded.extend(args.retention.to_args());
    let plan = converge::up::Plan {
        binary: std::env::current_exe()?,
        mode: args.mode.into(),
        instances: args.instances,
        listen: args.listen,
        secret: system::new_secret(),
        dashboard_token: dashboard::Token::generate().expose().to_owned(),
        run_dir: args.run_dir.clone(),
        args: forwarded,
        env: args
            .backends
            .to_env()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    };
    println!(
        "starting {} process(es) of each service and the gateway; logs in {}",
        args.instances,
        args.run_dir.join("logs").display()
    );
    let supervisor = converge::supervisor::Supervisor::start(plan.clone()).await?;
    let url = supervisor.cluster().lock().await.url();
    println!("serving: {url}");
    println!("dashboard: {url}/dashboard#token={}", plan.dashboard_token);
    println!("stop with Ctrl-C");
    shutdown_signal().await;
    supervisor.stop().await;
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}

async fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.url);
    let options = checker::CheckOptions {
        expect_settled: !args.now,
        wait_quiet: (!args.now).then(|| std::time::Duration::from_secs(args.wait_s)),
        ..Default::default()
    };
    let report = checker::check(client.http(), client.base(), &options).await?;
    for violation in &report.violations {
        println!("{violation}");
    }
    for in_flight in &report.in_flight {
        println!("still in flight: {in_flight}");
    }
    println!("{report}");
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn demo(args: converge::settings::DemoArgs) -> anyhow::Result<ExitCode> {
    let plan = converge::demo::plan(&args, command_line());
    println!(
        "Offering {} orders/s for {} s over {} accounts in each of: {}",
        args.rate,
        args.duration_s,
        args.accounts,
        plan.modes
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let report = converge::bench::run(&plan).await?;
    print!("{}", converge::demo::table(&report.runs));
    finish(&report, &args.out)
}

async fn bench(args: converge::settings::BenchArgs) -> anyhow::Result<ExitCode> {
    let ms = std::time::Duration::from_millis;
    let plan = converge::bench::Plan {
        command: command_line(),
        modes: args.modes.clone(),
        rate: args.rate,
        connections: args.connections.max(1),
        duration: std::time::Duration::from_secs_f64(args.duration_s.max(0.1)),
        accounts: args.accounts.max(1),
        seed: args.seed,
        stats_delays_ms: if args.stats_delay_ms.is_empty() {
            vec![0]
        } else {
            args.stats_delay_ms.clone()
        },
        probe_per_s: args.probe_per_s,
        cron_interval: ms(args.cron_interval_ms.max(1)),
        call_timeout: ms(args.call_timeout_ms),
        network_delay: ms(args.network_delay_ms),
        delays: converge::system::Delays::default(),
        backends: bench_backends(&args),
    };
    let report = converge::bench::run(&plan).await?;
    println!("{}", report::table::render(&report));
    finish(&report, &args.out)
}

/// `converge drill`: the table on stdout, the report in `--out`; exit status 1 unless every
/// fault ended with the system agreeing and no violation.
async fn drill(args: converge::settings::DrillArgs) -> anyhow::Result<ExitCode> {
    use converge::drill::{self, fault};
    args.backends.location()?;
    let faults = match args.random {
        Some(count) => fault::random(&args.faults, count, args.seed),
        None => fault::each(&args.faults),
    };
    let plan = drill::Plan {
        command: command_line(),
        binary: std::env::current_exe()?,
        modes: args.mode.modes(),
        faults,
        rate: args.rate.max(1),
        accounts: args.accounts.max(1),
        seed: args.seed,
        steady: std::time::Duration::from_secs_f64(args.steady_s.max(0.0)),
        window: std::time::Duration::from_secs_f64(args.fault_s.max(0.1)),
        agree_timeout: std::time::Duration::from_secs(args.agree_timeout_s),
        backends: args.backends.clone(),
        args: args.knobs.to_args(),
        out: args.out.clone(),
    };
    let report = drill::run(&plan).await?;
    print!("{}", drill::output::table(&report));
    let page = drill::output::write(&report, &args.out)?;
    println!("report: {} (and drill.json beside it)", page.display());
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn soak(args: converge::settings::SoakArgs) -> anyhow::Result<ExitCode> {
    let plan = converge::soak::Plan::from_args(&args, command_line());
    println!("{}", plan.describe());
    let soak = converge::soak::run(&plan, |sample| println!("{}", sample.line())).await?;
    let page = converge::soak::write(&soak, &args.out)?;
    println!("{}", soak.summary());
    println!(
        "report: {} (soak.json and the SVG charts beside it)",
        page.display()
    );
    for violation in &soak.violations {
        println!("{violation}");
    }
    Ok(if soak.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Every database × transport pair the bench was asked for.
fn bench_backends(args: &converge::settings::BenchArgs) -> Vec<converge::bench::Backends> {
    let mut pairs = Vec::new();
    for &store in &args.store {
        for &transport in &args.transport {
            let pair = args.servers.backends(store, transport);
            if !pairs.contains(&pair) {
                pairs.push(pair);
            }
        }
    }
    pairs
}

/// Writes the report, says where, lists violations; exit status 1 if there is any.
fn finish(report: &report::Report, out: &std::path::Path) -> anyhow::Result<ExitCode> {
    let page = converge::bench::write(report, out)?;
    println!("report: {} (and report.json beside it)", page.display());
    let mut clean = true;
    for run in &report.runs {
        for violation in &run.violations {
            clean = false;
            println!(
                "{} (stats delay {} ms): {violation}",
                run.mode, run.stats_delay_ms
            );
        }
    }
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The command line as typed, for the report.
fn command_line() -> String {
    let mut args = std::env::args();
    let program = args.next().map(|p| {
        std::path::Path::new(&p)
            .file_name()
            .map_or(p.clone(), |n| n.to_string_lossy().into_owned())
    });
    program
        .into_iter()
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ")
}
