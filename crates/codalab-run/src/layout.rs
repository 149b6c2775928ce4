//! Where things are: in the local workspace and inside the containers, and how
//! command templates become argv.

/// Container paths, the same on every backend.
pub mod container {
    /// The run folder and working directory.
    pub const RUN: &str = "/codalab/run";
    /// The program: the participant's code, or the scoring program.
    pub const PROGRAM: &str = "/codalab/run/program";
    /// The ingestion program.
    pub const INGESTION_PROGRAM: &str = "/codalab/run/ingestion_program";
    /// Input data (read-only).
    pub const INPUT: &str = "/codalab/run/input";
    /// Predictions, while scoring: `input/res`.
    pub const PREDICTIONS: &str = "/codalab/run/input/res";
    /// Output, kept and uploaded.
    pub const OUTPUT: &str = "/codalab/run/output";
    /// Scratch space.
    pub const TEMP: &str = "/codalab/run/temp";
    /// Shared between the ingestion program and the participant's program.
    pub const SHARED: &str = "/codalab/shared";
    /// Hidden reference data, for the ingestion program only.
    pub const HIDDEN: &str = "/codalab/hidden";
    /// The submission's steps folder, alive from prediction to scoring (`$STEPS`).
    pub const STEPS: &str = "/codalab/steps";
}

/// Workspace-relative folders.
pub mod local {
    /// The bundle root: `run.txt` lands at `run/metadata`.
    pub const RUN: &str = "run";
    /// Fetched program.
    pub const PROGRAM: &str = "run/program";
    /// Fetched ingestion program.
    pub const INGESTION_PROGRAM: &str = "run/ingestion_program";
    /// Fetched input.
    pub const INPUT: &str = "run/input";
    /// Output.
    pub const OUTPUT: &str = "run/output";
    /// Scratch.
    pub const TEMP: &str = "run/temp";
    /// Where `hidden_ref` is fetched, inside the run folder.
    pub const HIDDEN_FETCHED: &str = "run/hidden_ref";
    /// Where hidden data is moved before anything runs, out of the run folder.
    pub const HIDDEN: &str = "hidden";
    /// Shared folder.
    pub const SHARED: &str = "shared";
    /// Logs the containers do not see.
    pub const LOGS: &str = "logs";
}

/// Which program a command belongs to, for `$program`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The participant's program or the scoring program.
    Program,
    /// The ingestion program: `$program` is its own folder.
    Ingestion,
}

/// Expands `$program`, `$input`, `$output`, `$tmp`, `$shared`, `$predictions`,
/// `$hidden`, `$ingestion_program` and `$submission_program` into container paths
/// (at each `$`, the longest known name wins; unknown names stay as written), then
/// splits the command into argv at whitespace, honouring single and double quotes
/// and backslash escapes. Nothing is handed to a shell.
pub fn argv(command: &str, role: Role) -> Result<Vec<String>, String> {
    split(&expand(command, role))
}

fn expand(command: &str, role: Role) -> String {
    let program = match role {
        Role::Program => container::PROGRAM,
        Role::Ingestion => container::INGESTION_PROGRAM,
    };
    let vars: [(&str, &str); 9] = [
        ("$submission_program", container::PROGRAM),
        ("$ingestion_program", container::INGESTION_PROGRAM),
        ("$predictions", container::PREDICTIONS),
        ("$program", program),
        ("$shared", container::SHARED),
        ("$hidden", container::HIDDEN),
        ("$output", container::OUTPUT),
        ("$input", container::INPUT),
        ("$tmp", container::TEMP),
    ];
    let mut out = String::with_capacity(command.len() + 64);
    let mut rest = command;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        match vars.iter().filter(|(name, _)| rest.starts_with(name)).max_by_key(|(n, _)| n.len()) {
            Some((name, value)) => {
                out.push_str(value);
                rest = &rest[name.len()..];
            }
            None => {
                out.push('$');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn split(s: &str) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    args.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => current.push(c),
                        None => return Err("the command has an unclosed single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => current.push(c),
                            Some(c) => {
                                current.push('\\');
                                current.push(c);
                            }
                            None => return Err("the command ends inside double quotes".into()),
                        },
                        Some(c) => current.push(c),
                        None => return Err("the command has an unclosed double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => current.push(c),
                    None => current.push('\\'),
                }
            }
            c => {
                in_word = true;
                current.push(c);
            }
        }
    }
    if in_word {
        args.push(current);
    }
    if args.is_empty() {
        return Err("the command is empty".into());
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_expand_to_container_paths() {
        assert_eq!(
            argv("python $program/score.py $input $output", Role::Program).unwrap(),
            [
                "python",
                "/codalab/run/program/score.py",
                "/codalab/run/input",
                "/codalab/run/output"
            ]
        );
        assert_eq!(
            argv(
                "python $program/ingest.py $input $output $hidden $submission_program $shared",
                Role::Ingestion
            )
            .unwrap(),
            [
                "python",
                "/codalab/run/ingestion_program/ingest.py",
                "/codalab/run/input",
                "/codalab/run/output",
                "/codalab/hidden",
                "/codalab/run/program",
                "/codalab/shared"
            ]
        );
        assert_eq!(
            argv("ls $predictions $tmp $ingestion_program $HOME", Role::Program).unwrap()[1..],
            [
                "/codalab/run/input/res",
                "/codalab/run/temp",
                "/codalab/run/ingestion_program",
                "$HOME"
            ]
        );
    }

    #[test]
    fn quotes_group_words_and_nothing_is_interpreted() {
        assert_eq!(
            split(r#"python -c "print('a b')" 'x  y' z\ w $(rm -rf /); `id`"#).unwrap(),
            ["python", "-c", "print('a b')", "x  y", "z w", "$(rm", "-rf", "/);", "`id`"]
        );
        assert!(split("  ").is_err());
        assert!(split("echo 'open").is_err());
        assert!(split("echo \"open").is_err());
    }
}
