package config

// Example is a commented configuration file with every key, as documented
// in the README; a test keeps it parsing.
const Example = `# PicoFlow global configuration: --config FILE, $PICOFLOW_CONFIG,
# HOME/config.yaml or /etc/picoflow/config.yaml (the first that is given or
# exists). Every key is optional.

# Defaults for workflows that do not set the value themselves.
defaults:
  max_parallel: 2        # tasks running at once; default: the number of CPUs
  retry: 1               # retries after a failed first attempt
  timeout: 10m           # per attempt: seconds, or a duration; default: none
  shutdown_grace: 30s    # on SIGTERM, how long running tasks may finish
  backoff:               # wait before retry n: initial * multiplier^(n-1), capped at max
    initial: 5s
    multiplier: 2
    max: 5m

paths:
  home: /var/lib/picoflow          # journal, logs, picoflow.db (--home and $PICOFLOW_HOME win)
  logs: /var/lib/picoflow/logs     # task logs; default HOME/logs
  workflows_dir: /etc/picoflow/workflows

log:
  format: text           # PicoFlow's own log on stderr: text or json (--log-format wins)

# What picoflow gc removes. Runs that have not finished are never touched.
retention:
  history_days: 30           # runs older than this lose their rows, logs and journal entries
  max_runs_per_workflow: 500 # and only this many newest runs per workflow are kept; 0: no limit
  log_days: 7                # logs go earlier than the rows; 0: with the rows

# PicoFlow's own memory (not the tasks').
resources:
  memory_limit: 64MiB    # soft limit for the Go heap (runtime/debug.SetMemoryLimit)
  gogc: 50               # GC target percentage, or off (unset: 50; 200 for a run of at most 2,000 tasks)
  max_workflow_file: 1MiB  # larger workflow files are refused
  sync_window: 10ms      # an idempotent task's end is fsynced within this (0..1s; 0: every batch)

# The daemon's HTTP endpoint (health, metrics).
http:
  listen: 127.0.0.1:9090

# The read-only web UI (picoflow ui; the daemon serves it on http.listen).
# With a token every page asks for it (Authorization: Bearer TOKEN, or open
# /login?token=TOKEN once), and a non-loopback address is allowed.
# ui:
#   token: 3f9c0d7e5a1b48c2a6e4f1d09b7c2e58

# Named secrets for ${secret:NAME} in workflows: one of env or file. A file
# must not be readable by others (chmod 600).
secrets:
  db_password: {env: PICOFLOW_DB_PASSWORD}
  api_token: {file: /etc/picoflow/secrets/api_token}
`
