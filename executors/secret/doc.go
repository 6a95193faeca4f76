// Package secret resolves the ${secret:NAME} and ${env:VAR} references of
// a task at execution time and keeps the resolved secret values out of
// everything PicoFlow writes.
//
// It owns:
//
//   - Store: the named secret sources (an environment variable or a file)
//     that the cli builds from the global config, and Expand, which replaces
//     references in a string. A secret is read each time it is resolved, so
//     a rotated file is picked up by the next attempt. A secret file must
//     be a regular file that is neither readable nor writable by others and
//     not writable by its group; anything else is refused.
//   - MaskAll, which reads every configured secret at start so that its
//     value is masked whether or not a task references it, and TaskEnv,
//     which removes the variables behind env secrets from the environment
//     tasks inherit.
//   - Redactor: every secret value the Store has read (plus the escaped
//     forms tools print it in: Forms). Redact replaces each occurrence in a
//     string with "***"; it is the engine's Options.Redact. Writer masks a
//     stream the same way, even when a value is split across Write calls:
//     it holds back the longest tail that could be the start of a secret
//     (at most len(longest)-1 bytes) until the next Write or Flush decides.
//   - Wrap: an executors.Executor wrapper that, per attempt, resolves the
//     task's config strings and the definition's env values (Request.RefKeys
//     only: run parameters and upstream outputs are data and are never
//     resolved, so that a value arriving from outside cannot name a secret),
//     routes the attempt's output through masking writers over the log, and
//     flushes them before returning. Executors never see a reference.
//   - Check: validation that every referenced secret is configured.
//
// Values are substituted verbatim: a reference inside a shell or ssh
// command is pasted into shell code. Pass secrets to commands through env
// (env: {TOKEN: ${secret:token}}, then "$TOKEN") to keep quoting right.
//
// The package must never write a resolved value anywhere (no logging, no
// error text: errors name the secret and its source, never its value),
// never resolve at load time, and never cache a value beyond the Redactor
// that masks it.
package secret
