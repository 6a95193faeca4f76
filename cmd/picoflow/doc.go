// Command picoflow runs DAG workflows on small Linux machines. Everything
// lives in package cli; main only hands it the arguments and exits with the
// code it returns, and must never do more.
package main
