fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match molt::config::parse_args(args) {
        Ok(cfg) => println!("{cfg:?}"),
        Err(errors) => {
            let e = molt::Error::Config(errors);
            eprintln!("molt: {e}");
            std::process::exit(e.exit_code());
        }
    }
}
