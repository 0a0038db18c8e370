//! `sqlx::migrate!` embeds `migrations/` at compile time, but cargo only knows to rebuild when
//! Rust sources change: without this, a new or edited migration is missing from the binary
//! until something else triggers a rebuild.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
