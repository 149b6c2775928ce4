"""Static checks of the deployment files, run by scripts/lint-deploy.

Each subcommand prints one line per problem and exits 1 if it found any:

  dockerfile FILE [--non-root UID] [--worker]
      parse a Dockerfile without Docker: base images come from ARGs with
      defaults, stages and COPY sources exist, no ADD of URLs, exec-form JSON
      parses, the final stage runs as UID; with --worker also the worker's
      contract (entrypoint, command, port, health check, volumes).
  compose FILE
      read a compose file without the compose plugin: services, builds, env
      files, volumes, network_mode and depends_on refer to things that exist.
  contract
      the settings named by docs/configuration.md against the ansible
      template, the compose env file and the systemd units; the compose
      stack's test credentials against the emulator's built-in defaults.
  render OUT_DIR
      render the ansible role's templates in-process with ansible-core's own
      templating, for every host of the example inventory and a few variants
      (mounted mode, local Docker, awkward values), check the env files they
      make, and lay out per variant a root tree for `systemd-analyze verify`
      (OUT_DIR/<variant>/etc/systemd/system/...), and list each variant's units
      in OUT_DIR/units.txt ("variant unit...").

Nothing here connects anywhere: no inventory host is contacted, no image is
built or pulled.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(REPO, "deploy")
ANSIBLE = os.path.join(DEPLOY, "ansible")
ROLE = os.path.join(ANSIBLE, "roles", "aci_worker")
DOCS = os.path.join(REPO, "docs", "configuration.md")

problems = []


def problem(where, what):
    problems.append(f"{os.path.relpath(where, REPO)}: {what}")


def finish():
    for p in problems:
        print(p)
    return 1 if problems else 0


# ---------------------------------------------------------------- Dockerfile


def dockerfile_instructions(path):
    """(line number, INSTRUCTION, arguments) with continuation lines joined and
    comments dropped (hadolint pragmas included)."""
    out, buf, start = [], "", 0
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not buf and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if buf and line.lstrip().startswith("#"):
                continue  # comments inside a continued instruction
            if not buf:
                start = n
            if line.endswith("\\"):
                buf += line[:-1] + " "
                continue
            buf += line
            word, _, rest = buf.strip().partition(" ")
            out.append((start, word.upper(), rest.strip()))
            buf = ""
    if buf:
        problem(path, f"line {start}: the file ends inside a continued instruction")
    return out


def exec_form(path, n, what, text):
    """The JSON array of an exec-form instruction, or None (with a problem)."""
    try:
        value = json.loads(text)
    except ValueError:
        problem(path, f"line {n}: {what} is not in exec (JSON array) form: {text}")
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or not value:
        problem(path, f"line {n}: {what} must be a non-empty JSON array of strings")
        return None
    return value


def dockerignore_allows(ignore_path, rel):
    """Whether the simple ignore file ('*' then '!path/' exceptions) lets rel in."""
    if not os.path.exists(ignore_path):
        return True
    allowed = True
    with open(ignore_path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pat = line[1:] if negate else line
            pat = pat.rstrip("/")
            if pat == "*" or rel == pat or rel.startswith(pat + "/"):
                allowed = negate
    return allowed


def check_dockerfile(path, non_root, worker):
    ins = dockerfile_instructions(path)
    ignore = path + ".dockerignore"
    if not os.path.exists(ignore):
        problem(path, f"no {os.path.basename(ignore)} beside it: the build would upload target/")
    global_args, stages, final = {}, [], None
    seen_from = False
    for n, word, rest in ins:
        if word == "ARG" and not seen_from:
            name, eq, default = rest.partition("=")
            global_args[name.strip()] = default.strip() if eq else ""
        elif word == "FROM":
            seen_from = True
            m = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
            if not m:
                problem(path, f"line {n}: cannot read FROM {rest}")
                continue
            image, name = m.group(1), m.group(2)
            ref = re.fullmatch(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", image)
            if ref:
                if ref.group(1) not in global_args:
                    problem(path, f"line {n}: FROM uses ${ref.group(1)}, not declared by an ARG before the first FROM")
                elif not global_args[ref.group(1)]:
                    problem(path, f"line {n}: ARG {ref.group(1)} has no default")
            elif image.lower() not in [s.lower() for s in stages]:
                problem(path, f"line {n}: FROM {image}: base images are build arguments here (FROM ${{ARG}})")
            if name:
                stages.append(name)
            final = {"line": n, "user": None, "cmd": None, "entrypoint": None, "expose": [],
                     "volumes": [], "healthcheck": None, "env": {}}
        elif final is None:
            if word != "ARG":
                problem(path, f"line {n}: {word} before the first FROM")
        elif word == "ADD":
            if re.search(r"(^|\s)(https?|ftp|git)://|git@", rest):
                problem(path, f"line {n}: ADD of a URL (unpinned download at build time); use COPY of a checked file")
        elif word == "COPY":
            args = rest.split()
            opts = [a for a in args if a.startswith("--")]
            paths = [a for a in args if not a.startswith("--")]
            source = next((o.split("=", 1)[1] for o in opts if o.startswith("--from=")), None)
            if source is not None:
                if source.lower() not in [s.lower() for s in stages]:
                    problem(path, f"line {n}: COPY --from={source}: no such stage before")
            elif len(paths) >= 2:
                for src in paths[:-1]:
                    rel = os.path.normpath(src)
                    if not os.path.exists(os.path.join(REPO, rel)):
                        problem(path, f"line {n}: COPY source {src} does not exist in the build context")
                    elif not dockerignore_allows(ignore, rel):
                        problem(path, f"line {n}: COPY source {src} is excluded by {os.path.basename(ignore)}")
        elif word == "USER":
            final["user"] = rest
        elif word in ("CMD", "ENTRYPOINT"):
            final[word.lower()] = exec_form(path, n, word, rest)
        elif word == "EXPOSE":
            final["expose"] += rest.split()
        elif word == "VOLUME":
            v = exec_form(path, n, "VOLUME", rest) if rest.startswith("[") else rest.split()
            final["volumes"] += v or []
        elif word == "ENV":
            for k, v in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", rest):
                final["env"][k] = v
        elif word == "HEALTHCHECK":
            m = re.search(r"\bCMD\s+(.*)$", rest)
            if rest.strip().upper() == "NONE" or not m:
                final["healthcheck"] = None
            else:
                final["healthcheck"] = exec_form(path, n, "HEALTHCHECK CMD", m.group(1))
        elif word not in ("RUN", "WORKDIR", "LABEL", "STOPSIGNAL", "SHELL", "ARG", "ONBUILD"):
            problem(path, f"line {n}: unexpected instruction {word}")
    if final is None:
        problem(path, "no FROM")
        return
    user = (final["user"] or "").split(":")[0]
    if non_root is not None:
        if user != non_root:
            problem(path, f"the final stage must run as USER {non_root} (found {user or 'none, i.e. root'})")
    if final["entrypoint"] is None:
        problem(path, "no exec-form ENTRYPOINT in the final stage")
    if worker:
        if final["entrypoint"] != ["aci-worker"]:
            problem(path, f'ENTRYPOINT must be ["aci-worker"], not {final["entrypoint"]}')
        if final["cmd"] != ["serve"]:
            problem(path, f'CMD must be ["serve"], not {final["cmd"]}')
        if "9100" not in final["expose"]:
            problem(path, "EXPOSE 9100 (HTTP_ADDR's port) is missing")
        if not final["healthcheck"]:
            problem(path, "no HEALTHCHECK")
        elif not any("/healthz" in part for part in final["healthcheck"]):
            problem(path, "the HEALTHCHECK does not ask /healthz")
        for setting in ("STATE_DIR", "SUBMISSION_TEMP_DIR"):
            where = final["env"].get(setting)
            if not where:
                problem(path, f"ENV {setting} is not set in the final stage")
            elif where not in final["volumes"]:
                problem(path, f"{setting} ({where}) is not a VOLUME")


# ---------------------------------------------------------------- compose

INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?+][^}]*)?\}|\$\$|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(path, text):
    """Compose's ${VAR:-default} with defaults only (what the file gives when no
    variable is set); a bare or malformed $ is a problem."""
    def sub(m):
        if m.group(0) == "$$":
            return "$"
        whole = m.group(0)
        d = re.match(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-(.*)\}$", whole)
        return d.group(1) if d else ""
    rest = INTERPOLATION.sub("", text)
    if "$" in rest:
        problem(path, f"malformed interpolation in {text!r}")
    return INTERPOLATION.sub(sub, text)


def walk_strings(value, fn):
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [walk_strings(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: walk_strings(v, fn) for k, v in value.items()}
    return value


def read_env_file(path):
    """NAME=value lines as compose and `docker run --env-file` read them."""
    values = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.lstrip()
            if not line.strip() or line.startswith("#"):
                continue
            name, eq, value = line.rstrip("\n").partition("=")
            if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                problem(path, f"line {n}: expected NAME=value")
                continue
            values[name] = value
    return values


def seconds(text):
    total = 0
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(h|m|s|ms|us)", str(text)):
        total += float(amount) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6}[unit]
    return total


def check_compose(path):
    import yaml

    base = os.path.dirname(path)
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict):
        problem(path, "no services mapping")
        return
    doc = walk_strings(doc, lambda s: interpolate(path, s))
    services = doc["services"]
    declared_volumes = set((doc.get("volumes") or {}).keys())
    for name, svc in services.items():
        where = f"service {name}"
        if not isinstance(svc, dict):
            problem(path, f"{where}: not a mapping")
            continue
        if "image" not in svc and "build" not in svc:
            problem(path, f"{where}: neither image nor build")
        build = svc.get("build")
        if isinstance(build, (str, dict)):
            context = build if isinstance(build, str) else build.get("context", ".")
            context = os.path.normpath(os.path.join(base, context))
            if not os.path.isdir(context):
                problem(path, f"{where}: build context {context} is not a directory")
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            if not os.path.isfile(os.path.join(context, dockerfile)):
                problem(path, f"{where}: no Dockerfile {dockerfile} in its build context")
        env_files = svc.get("env_file") or []
        env = {}
        for entry in [env_files] if isinstance(env_files, str) else env_files:
            file = entry if isinstance(entry, str) else entry.get("path")
            full = os.path.join(base, file)
            if not os.path.isfile(full):
                problem(path, f"{where}: env_file {file} does not exist")
            else:
                env.update(read_env_file(full))
        for vol in svc.get("volumes") or []:
            source = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
            if isinstance(vol, str) and ":" not in vol:
                continue  # anonymous volume
            if source.startswith((".", "/")):
                if source.startswith(".") and not os.path.exists(os.path.join(base, source)):
                    problem(path, f"{where}: bind source {source} does not exist")
            elif source and source not in declared_volumes:
                problem(path, f"{where}: volume {source} is not declared under volumes:")
        mode = svc.get("network_mode", "")
        if mode.startswith("service:"):
            other = mode.split(":", 1)[1]
            if other not in services:
                problem(path, f"{where}: network_mode refers to unknown service {other}")
            if svc.get("ports"):
                problem(path, f"{where}: ports cannot be published with network_mode {mode}")
        deps = svc.get("depends_on") or {}
        for dep, cond in (deps.items() if isinstance(deps, dict) else [(d, None) for d in deps]):
            if dep not in services:
                problem(path, f"{where}: depends_on unknown service {dep}")
            elif isinstance(cond, dict) and cond.get("condition") == "service_healthy":
                if not services[dep].get("healthcheck"):
                    problem(path, f"{where}: waits for {dep} to be healthy, which has no healthcheck")
        grace = env.get("SHUTDOWN_GRACE_SECS")
        if grace is not None and seconds(svc.get("stop_grace_period", "10s")) <= float(grace):
            problem(path, f"{where}: stop_grace_period must exceed SHUTDOWN_GRACE_SECS ({grace} s)")


# ---------------------------------------------------------------- settings contract


def documented_settings():
    """Setting names (first column) of the tables in docs/configuration.md before
    its exit codes, and the default of SHUTDOWN_GRACE_SECS."""
    names, grace = [], None
    with open(DOCS, encoding="utf-8") as f:
        for line in f:
            if line.startswith("## Exit codes"):
                break
            m = re.match(r"\|\s*`([A-Z][A-Z0-9_]*)`\s*\|\s*([^|]*)\|", line)
            if m:
                names.append(m.group(1))
                if m.group(1) == "SHUTDOWN_GRACE_SECS":
                    grace = int(re.sub(r"\D", "", m.group(2)))
    if len(names) < 20 or grace is None:
        problem(DOCS, "could not read the settings tables (has the layout changed?)")
    return names, grace


# Settings the env_config template does not write as lines, and why (the
# template's comments say the same).
NOT_IN_ENV_CONFIG = {
    "AFS_NAME": "in the AFS_CREDENTIALS file",
    "AFS_KEY": "in the AFS_CREDENTIALS file",
    "AFS_SHARE": "in the AFS_CREDENTIALS file",
    "LOG_CFG": "ignored by aci-worker",
    "WORKER": "ignored by aci-worker",
}


def unit_settings(path):
    values = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if "=" in line and not line.lstrip().startswith(("#", ";")):
                k, _, v = line.strip().partition("=")
                values.setdefault(k, []).append(v)
    return values


def check_contract():
    names, grace = documented_settings()
    documented = set(names)
    template = os.path.join(ROLE, "templates", "env_config.j2")
    with open(template, encoding="utf-8") as f:
        written = re.findall(r"setting\('([A-Z][A-Z0-9_]*)'", f.read())
    for name in sorted(documented - set(written) - set(NOT_IN_ENV_CONFIG)):
        problem(template, f"{name} (docs/configuration.md) is not written")
    for name in sorted(set(written) - documented):
        problem(template, f"{name} is not a setting of docs/configuration.md")
    for name in sorted(n for n in set(written) if n in NOT_IN_ENV_CONFIG):
        problem(template, f"{name} is written but should be {NOT_IN_ENV_CONFIG[name]}")
    dupes = sorted({n for n in written if written.count(n) > 1})
    if dupes:
        problem(template, f"written twice: {', '.join(dupes)}")
    env_file = os.path.join(DEPLOY, "compose", "worker.env")
    for name in sorted(set(read_env_file(env_file)) - documented):
        problem(env_file, f"{name} is not a setting of docs/configuration.md")
    for unit in ("aci-worker.service", "aci-worker@.service"):
        path = os.path.join(DEPLOY, "systemd", unit)
        s = unit_settings(path)
        stop = s.get("TimeoutStopSec", ["0"])[-1]
        if not stop.isdigit() or int(stop) <= grace:
            problem(path, f"TimeoutStopSec={stop} must exceed the default SHUTDOWN_GRACE_SECS ({grace})")
        if s.get("ExecStart") != ["/usr/local/bin/aci-worker serve"]:
            problem(path, "ExecStart must be /usr/local/bin/aci-worker serve")
        if "/etc/aci-worker/env_config" not in s.get("EnvironmentFile", []):
            problem(path, "EnvironmentFile=/etc/aci-worker/env_config is missing")
        for key, want in (("KillSignal", "SIGTERM"), ("Restart", "on-failure"),
                          ("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                          ("PrivateTmp", "yes")):
            if s.get(key, [None])[-1] != want:
                problem(path, f"{key}={want} is missing")
        for line in s.get("Environment", []):
            k, _, v = line.partition("=")
            if k not in documented:
                problem(path, f"Environment= sets {k}, not a setting of docs/configuration.md")
    instance = os.path.join(DEPLOY, "systemd", "aci-worker@.service")
    if "/etc/aci-worker/%i.env" not in unit_settings(instance).get("EnvironmentFile", []):
        problem(instance, "EnvironmentFile=/etc/aci-worker/%i.env is missing")
    check_compose_matches_emulator(read_env_file(env_file))


def emulator_defaults():
    """The emulator's built-in test identities: `pub const DEFAULT_X: &str = "...";`."""
    found = {}
    for rel in ("arm/mod.rs", "files/mod.rs"):
        path = os.path.join(REPO, "crates", "azure-emulator", "src", rel)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            problem(path, f"cannot read the emulator's defaults: {e}")
            continue
        found.update(re.findall(r'pub const (DEFAULT_[A-Z_]+): &str =\s*"([^"]*)";', text))
    return found


def check_compose_matches_emulator(env):
    """The compose stack's credentials are the emulator's defaults, which its
    command line leaves as they are."""
    defaults = emulator_defaults()
    creds_path = os.path.join(DEPLOY, "compose", "azure_creds.json")
    with open(creds_path, encoding="utf-8") as f:
        creds = json.load(f)
    env_path = os.path.join(DEPLOY, "compose", "worker.env")
    pairs = [
        (creds_path, "tenantId", creds.get("tenantId"), "DEFAULT_TENANT_ID"),
        (creds_path, "clientId", creds.get("clientId"), "DEFAULT_CLIENT_ID"),
        (creds_path, "clientSecret", creds.get("clientSecret"), "DEFAULT_CLIENT_SECRET"),
        (creds_path, "subscriptionId", creds.get("subscriptionId"), "DEFAULT_SUBSCRIPTION_ID"),
        (env_path, "AZURE_RESOURCE_GROUP", env.get("AZURE_RESOURCE_GROUP"), "DEFAULT_RESOURCE_GROUP"),
        (env_path, "AZURE_LOCATION", env.get("AZURE_LOCATION"), "DEFAULT_LOCATION"),
        (env_path, "AFS_NAME", env.get("AFS_NAME"), "DEFAULT_ACCOUNT"),
        (env_path, "AFS_KEY", env.get("AFS_KEY"), "DEFAULT_KEY"),
    ]
    # The endpoints the worker is given are where the emulator listens.
    import yaml

    compose_path = os.path.join(DEPLOY, "compose", "compose.yaml")
    with open(compose_path, encoding="utf-8") as f:
        command = yaml.safe_load(f)["services"]["azure-emulator"].get("command") or []
    flags = dict(arg[2:].split("=", 1) for arg in command if arg.startswith("--") and "=" in arg)
    arm = "https://" + flags.get("arm-addr", "?")
    for key in ("activeDirectoryEndpointUrl", "resourceManagerEndpointUrl"):
        if creds.get(key, "").rstrip("/") != arm:
            problem(creds_path, f"{key} is not the emulator's --arm-addr ({arm})")
    files = f"http://{flags.get('files-addr', '?')}/{defaults.get('DEFAULT_ACCOUNT', '?')}"
    if env.get("AFS_ENDPOINT") != files:
        problem(env_path, f"AFS_ENDPOINT is not the emulator's --files-addr ({files})")
    for path, name, value, const in pairs:
        if const not in defaults:
            problem(path, f"the emulator no longer defines {const}; check {name}")
        elif value != defaults[const]:
            problem(path, f"{name} differs from the emulator's {const}")


# ---------------------------------------------------------------- env files as systemd reads them

NEWLINE = "\n\r"
WHITESPACE = " \t\n\r"
SHELL_NEED_ESCAPE = '"\\`$'


def parse_systemd_env(text):
    """The assignments of an EnvironmentFile=, read as systemd (v250 and later)
    reads them (src/basic/env-file.c)."""
    out = {}
    state, key, value = "pre_key", "", ""
    last_ws = None

    def push():
        k = key.rstrip()
        v = value if last_ws is None else value[:last_ws]
        out[k] = v

    for c in text + "\n":
        if state == "pre_key":
            if c in "#;":
                state = "comment"
            elif c not in WHITESPACE:
                state, key, value, last_ws = "key", c, "", None
        elif state == "key":
            if c in NEWLINE:
                state = "pre_key"  # a key without '=' is ignored
            elif c == "=":
                state = "pre_value"
            else:
                key += c
        elif state == "pre_value":
            if c in NEWLINE:
                push()
                state = "pre_key"
            elif c == "'":
                state = "single"
            elif c == '"':
                state = "double"
            elif c == "\\":
                state = "value_escape"
            elif c not in WHITESPACE:
                state, value, last_ws = "value", value + c, None
        elif state == "value":
            if c in NEWLINE:
                push()
                state = "pre_key"
            elif c == "\\":
                state, last_ws = "value_escape", None
            else:
                if c not in WHITESPACE:
                    last_ws = None
                elif last_ws is None:
                    last_ws = len(value)
                value += c
        elif state == "value_escape":
            state = "value"
            if c not in NEWLINE:
                value += c
        elif state == "single":
            if c == "'":
                state = "pre_value"
            else:
                value += c
        elif state == "double":
            if c == '"':
                state = "pre_value"
            elif c == "\\":
                state = "double_escape"
            else:
                value += c
        elif state == "double_escape":
            state = "double"
            if c in SHELL_NEED_ESCAPE:
                value += c
            elif c != "\n":
                value += "\\" + c
        elif state == "comment":
            if c == "\\":
                state = "comment_escape"
            elif c in NEWLINE:
                state = "pre_key"
        elif state == "comment_escape":
            state = "comment"
    return out


AWKWARD_VALUES = [
    "plain", "two words", " leading", "trailing ", 'a"quote', "'single", "back\\slash",
    "dollar$HOME", "${BRACED}", "back`tick", "#hash", "semi;colon", "k=v", "", "ends\\",
    "x\\\"y", "\\$NOT",
    "amqps://user:p%40ss;w#rd@broker.example.org:5671/%2F", "ünïcödé",
]


# ---------------------------------------------------------------- rendering the role


def render_role(out_dir):
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    loader = DataLoader()

    def trust(x):
        if isinstance(x, str):
            return trust_as_template(x)
        if isinstance(x, dict):
            return {k: trust(v) for k, v in x.items()}
        if isinstance(x, list):
            return [trust(v) for v in x]
        return x

    def load(path):
        return trust(loader.load_from_file(path) or {})

    names, _ = documented_settings()
    documented = set(names)
    group_vars = load(os.path.join(ANSIBLE, "group_vars", "aci_workers.example.yml"))
    inventory = loader.load_from_file(os.path.join(ANSIBLE, "inventory.example.yml"))
    hosts = inventory["all"]["children"]["aci_workers"]["hosts"]
    example_text = ""
    for f in ("inventory.example.yml", os.path.join("group_vars", "aci_workers.example.yml")):
        with open(os.path.join(ANSIBLE, f), encoding="utf-8") as fh:
            example_text += fh.read()
    # The examples refer to vault variables; stand-ins of the right shape.
    vault = {n: "stand-in-" + n for n in set(re.findall(r"\bvault_[a-z0-9_]+", example_text))}
    vault["vault_aci_worker_azure_creds"] = {"clientId": "c", "clientSecret": "s", "tenantId": "t",
                                             "subscriptionId": "u"}
    vault["vault_aci_worker_broker_url"] = "amqps://codalab:secret@broker.example.org:5671/%2F"

    variants = {}
    for host, host_vars in hosts.items():
        variants[host] = (host, trust(host_vars or {}))
    first = next(iter(hosts))
    variants["mounted-mode"] = (first, trust({
        "aci_worker_afs_mode": "mounted", "aci_worker_afs_share": "codalab-runs",
        "aci_worker_instances": [{"name": "one"}, {"name": "two"}]}))
    variants["local-docker"] = (first, trust({
        "aci_worker_aci_pred": False, "aci_worker_aci_score": True,
        "aci_worker_state_dir": "/srv/aci-worker/state"}))
    awkward = {f"X_AWKWARD_{i}": v for i, v in enumerate(AWKWARD_VALUES)}
    variants["awkward-values"] = (first, {"aci_worker_extra_env": awkward,
                                          "aci_worker_image_registry_pwd": 'p"w$d\\`x'})

    shutil.rmtree(out_dir, ignore_errors=True)
    for variant, (host, overrides) in variants.items():
        variables = {}
        variables.update(load(os.path.join(ROLE, "defaults", "main.yml")))
        variables.update(group_vars)
        variables.update(trust(hosts[host] or {}))
        variables.update(vault)
        variables.update(overrides)
        variables.update(load(os.path.join(ROLE, "vars", "main.yml")))
        variables.update(inventory_hostname=host, playbook_dir=ANSIBLE,
                         ansible_managed="Ansible managed", ansible_check_mode=False)
        templar = Templar(loader=loader, variables=variables)
        templar = templar.copy_with_new_env(searchpath=[os.path.join(ROLE, "templates")])

        def value(expr):
            return templar.template(trust_as_template("{{ " + expr + " }}"))

        def render(name, extra=None):
            with open(os.path.join(ROLE, "templates", name), encoding="utf-8") as f:
                source = f.read()
            t = templar
            if extra:
                t = templar.copy_with_new_env(searchpath=[os.path.join(ROLE, "templates")])
                t.available_variables = dict(variables, **extra)
            try:
                return t.template(trust_as_template(source))
            except Exception as e:  # any templating failure is a finding
                problem(os.path.join(ROLE, "templates", name), f"[{variant}] does not render: {e}")
                return ""

        root = os.path.join(out_dir, variant)
        etc = os.path.join(root, "etc")
        units_dir = os.path.join(etc, "systemd", "system")
        os.makedirs(units_dir)

        env = render("env_config.j2")
        write(os.path.join(etc, "aci-worker", "env_config"), env)
        check_env(variant, "env_config.j2", env, documented,
                  expected=awkward if variant == "awkward-values" else None)
        parsed = parse_systemd_env(env)
        if variant == "awkward-values" and parsed.get("IMAGE_REGISTRY_PWD") != 'p"w$d\\`x':
            problem(os.path.join(ROLE, "templates", "env_config.j2"),
                    "[awkward-values] IMAGE_REGISTRY_PWD does not survive systemd's parser")
        for index, item in enumerate(value("aci_worker_instances")):
            text = render("instance.env.j2", {"item": item, "index": index})
            write(os.path.join(etc, "aci-worker", f"{item['name']}.env"), text)
            check_env(variant, "instance.env.j2", text, documented)
        if value("aci_worker_afs_name"):
            creds = render("afs_creds.j2")
            keys = set(parse_systemd_env(creds))
            if keys != {"AFS_NAME", "AFS_KEY", "AFS_SHARE"}:
                problem(os.path.join(ROLE, "templates", "afs_creds.j2"),
                        f"[{variant}] holds {sorted(keys)}, not AFS_NAME, AFS_KEY, AFS_SHARE")

        for unit in ("aci-worker.service", "aci-worker@.service"):
            shutil.copy(os.path.join(DEPLOY, "systemd", unit), units_dir)
            dropins = os.path.join(units_dir, unit + ".d")
            os.makedirs(dropins)
            dropin = render("service-dropin.conf.j2")
            write(os.path.join(dropins, "10-aci-worker.conf"), dropin)
            grace = int(value("aci_worker_shutdown_grace_secs"))
            stop = re.search(r"^TimeoutStopSec=(\d+)$", dropin, re.M)
            if not stop or int(stop.group(1)) <= grace:
                problem(os.path.join(ROLE, "templates", "service-dropin.conf.j2"),
                        f"[{variant}] TimeoutStopSec does not exceed SHUTDOWN_GRACE_SECS")
            if value("aci_worker_mounted"):
                write(os.path.join(dropins, "20-mount.conf"), render("mount-dropin.conf.j2"))
        wanted = list(value("aci_worker_units"))
        if value("aci_worker_mounted"):
            where = value("aci_worker_submission_temp_dir")
            mount = subprocess.run(["systemd-escape", "--path", "--suffix=mount", where],
                                   capture_output=True, text=True, check=True).stdout.strip() \
                if shutil.which("systemd-escape") else None
            if mount:
                write(os.path.join(units_dir, mount), render("cifs.mount.j2"))
                wanted.append(mount)
        with open(os.path.join(out_dir, "units.txt"), "a", encoding="utf-8") as f:
            f.write(variant + " " + " ".join(wanted) + "\n")


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def check_env(variant, template, text, documented, expected=None):
    where = os.path.join(ROLE, "templates", template)
    parsed = parse_systemd_env(text)
    for name in parsed:
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            problem(where, f"[{variant}] bad setting name {name!r}")
        elif name not in documented and not name.startswith("X_AWKWARD_"):
            problem(where, f"[{variant}] {name} is not a setting of docs/configuration.md")
    for name, want in (expected or {}).items():
        if want == "":
            continue  # an empty value is left out on purpose
        got = parsed.get(name)
        if got != want:
            problem(where, f"[{variant}] {want!r} reads back as {got!r} through systemd's parser")
            continue
        line = next(line for line in text.splitlines() if line.startswith(name + "="))
        raw = line.partition("=")[2]
        quoted = raw.startswith('"')
        if not quoted and raw != want:
            problem(where, f"[{variant}] {want!r} is written unquoted but differently: {raw!r}")


# ---------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dockerfile")
    d.add_argument("file")
    d.add_argument("--non-root")
    d.add_argument("--worker", action="store_true")
    c = sub.add_parser("compose")
    c.add_argument("file")
    sub.add_parser("contract")
    r = sub.add_parser("render")
    r.add_argument("out_dir")
    args = parser.parse_args()
    if args.cmd == "dockerfile":
        check_dockerfile(os.path.abspath(args.file), args.non_root, args.worker)
    elif args.cmd == "compose":
        check_compose(os.path.abspath(args.file))
    elif args.cmd == "contract":
        check_contract()
    elif args.cmd == "render":
        render_role(os.path.abspath(args.out_dir))
    return finish()


if __name__ == "__main__":
    sys.exit(main())
