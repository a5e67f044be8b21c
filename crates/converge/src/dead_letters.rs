//! `converge dead-letters list|replay|discard`: an operator's hands on the events a service
//! set aside.
//!
//! Only an event that can never be applied (it cannot be decoded, or breaks a contract) is a
//! dead letter; everything transient is retried for as long as it lasts. So a dead letter
//! needs a person: read its body, fix the cause (a producer's bug, an operator's mistake),
//! then replay it, or discard it. These go to a service's own internal routes, with the
//! shared secret: the public `GET /dead-letters` lists letters without their bodies, and
//! changes nothing.

use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};
use contracts::internal::{
    DEAD_LETTERS_PATH, DeadLetterList, SECRET_HEADER, discard_path, replay_path,
};
use reqwest::{Method, StatusCode};

#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    /// The service's own address (not the user-facing one): its internal routes are there,
    /// e.g. `http://127.0.0.1:7005` (`converge up` logs each process's address).
    #[arg(long, env = "CONVERGE_SERVICE_URL", global = true, default_value = "")]
    pub url: String,
    /// The shared secret of the internal routes.
    #[arg(long, env = "CONVERGE_SECRET", hide_env_values = true, global = true)]
    pub secret: Option<String>,
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Action {
    /// Every letter the service set aside: id, feed and position, event id, tries, last error.
    List {
        /// Print the letters as JSON, with each event's body.
        #[arg(long)]
        json: bool,
    },
    /// Apply a letter's event again: it leaves the list if it applies now; if it fails
    /// again, it stays with the new error (exit status 1).
    Replay { id: i64 },
    /// Remove a letter without applying its event.
    Discard { id: i64 },
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !args.url.is_empty(),
        "--url (or CONVERGE_SERVICE_URL): the service's own address is required"
    );
    let secret = args
        .secret
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("--secret (or CONVERGE_SECRET) is required"))?;
    let base = args.url.trim_end_matches('/');
    let http = reqwest::Client::builder().no_proxy().build()?;
    let send = |method: Method, path: String| {
        http.request(method, format!("{base}{path}"))
            .header(SECRET_HEADER, secret)
            .send()
    };
    match args.action {
        Action::List { json } => {
            let response = checked(send(Method::GET, DEAD_LETTERS_PATH.into()).await?).await?;
            let list: DeadLetterList = response.json().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print_table(&list);
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Replay { id } => {
            let response = send(Method::POST, replay_path(id)).await?;
            match response.status() {
                StatusCode::CONFLICT => {
                    eprintln!(
                        "dead letter {id} failed again: {}",
                        error_of(response).await
                    );
                    Ok(ExitCode::FAILURE)
                }
                _ => {
                    checked(response).await?;
                    println!("dead letter {id} replayed: applied, and off the list");
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        Action::Discard { id } => {
            checked(send(Method::POST, discard_path(id)).await?).await?;
            println!("dead letter {id} discarded");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_table(list: &DeadLetterList) {
    if list.dead_letters.is_empty() {
        println!("no dead letters");
        return;
    }
    println!(
        "{:>6}  {:<8}  {:>10}  {:<40}  {:>5}  error",
        "id", "feed", "seq", "event", "tries"
    );
    for letter in &list.dead_letters {
        let error = letter.error.lines().next().unwrap_or_default();
        println!(
            "{:>6}  {:<8}  {:>10}  {:<40}  {:>5}  {error}",
            letter.id, letter.feed, letter.cursor.seq, letter.event_id, letter.attempts
        );
    }
}

/// The response if it is a success; else an error with the service's own message.
async fn checked(response: reqwest::Response) -> anyhow::Result<reqwest::Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let message = error_of(response).await;
    anyhow::bail!("the service answered {status}: {message}")
}

/// The `error` of a service's JSON error body, or the body as it came.
async fn error_of(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
        .unwrap_or(text)
}
