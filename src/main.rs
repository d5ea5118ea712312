//! `invent-proxy`: see the library crate for how it works.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    invent_proxy::cli::main()
}
