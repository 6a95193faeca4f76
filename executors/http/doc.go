// Package httpx runs `type: http` tasks: one HTTP request with net/http
// (the directory is executors/http; the package name keeps clear of
// net/http).
//
// An attempt succeeds when the response status is one of expect_status
// (any 2xx when unset). Otherwise 5xx, 429 and 408 responses and transport
// errors (refused, reset, DNS) are retryable failures, with the server's
// Retry-After (delta seconds or an HTTP date, capped at MaxRetryAfter) in
// Result.RetryAfter; any other status, a TLS verification failure and a
// bad request are NoRetry. The per-attempt timeout is config.timeout,
// bounded by the task's timeout, else DefaultTimeout; running out of it is
// a TimedOut attempt.
//
// The task log gets a request line, a response line (protocol, status,
// content type, size, duration) and the response body, up to MaxBody
// bytes. outputs extract values from a JSON response body with a path
// (executors.OutputPath): ".version", ".items[0].id", `.["odd key"]`, or "."
// for the whole body. A string is exported as is, a number as its JSON
// text exactly as received, true/false/null as such, and an object or
// array as compact JSON. A missing path, a non-JSON body or an output over
// MaxOutput fails the attempt (NoRetry).
//
// TLS is always verified: against the system roots plus, with ca_file, a
// PEM bundle of extra CAs. Transports are kept per ca_file so connections
// are reused across tasks; Close closes their idle connections.
//
// Redirects are followed, up to 10, only within the scheme and host of the
// url: custom headers may carry credentials, and net/http strips only the
// ones it knows on a redirect to another host. A redirect elsewhere is the
// response (a failure unless expect_status lists it).
//
// The package must never retry a request itself, never send the request's
// headers to a host other than the url's, never turn TLS verification
// off, and never log request headers or the request body (they carry
// credentials).
//
// The package is named httpx, not after its directory: as http it would
// shadow net/http, which it and the cli (its importer) use throughout.
// The directory keeps the task type's name; importers write
// httpx "github.com/picoflow/picoflow/executors/http".
package httpx
