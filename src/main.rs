//! `molt`: load the configuration, then run. Kept thin: every decision lives in the library.

use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let loaded = match molt::config::cli_main(args) {
        Ok(loaded) => loaded,
        Err(exit) => {
            print!("{}", exit.stdout);
            eprint!("{}", exit.stderr);
            let _ = std::io::stdout().flush();
            std::process::exit(exit.code);
        }
    };
    for notice in &loaded.notices {
        eprintln!("molt: warning: {notice}");
    }
    // The core engineer replaces this with the master.
    println!("config OK");
}
