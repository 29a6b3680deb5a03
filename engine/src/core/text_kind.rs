//! What a file's name says its text is: the views that pay off only there depend on it.

/// What a file's name says its text is, for the views that only pay off there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextKind {
    /// Configuration: INI, TOML, YAML, Terraform, properties, Dockerfiles.
    Config,
    /// Program source, where a literal may be split in pieces.
    Code,
    /// Anything else.
    Other,
}

impl TextKind {
    /// The kind of a file (or archive member) by its name.
    pub fn of(name: &str) -> TextKind {
        let base = name.rsplit(['/', '\\']).next().unwrap_or(name).to_ascii_lowercase();
        let ext = base.rsplit_once('.').map_or("", |(_, e)| e);
        if base.starts_with("dockerfile")
            || base.starts_with("containerfile")
            || matches!(
                ext,
                "ini"
                    | "cfg"
                    | "conf"
                    | "toml"
                    | "tf"
                    | "tfvars"
                    | "hcl"
                    | "yaml"
                    | "yml"
                    | "properties"
                    | "dockerfile"
            )
        {
            TextKind::Config
        } else if matches!(
            ext,
            "py" | "pyi"
                | "pyw"
                | "ipynb"
                | "js"
                | "mjs"
                | "cjs"
                | "ts"
                | "jsx"
                | "tsx"
                | "rb"
                | "go"
                | "java"
                | "kt"
                | "php"
                | "cs"
                | "swift"
                | "scala"
                | "sh"
                | "bash"
                | "zsh"
                | "ps1"
                | "c"
                | "h"
                | "cc"
                | "cpp"
                | "hpp"
                | "rs"
                | "lua"
                | "pl"
        ) {
            TextKind::Code
        } else {
            TextKind::Other
        }
    }
}
