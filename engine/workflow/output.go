package workflow

import (
	"strings"
)

// OutputVar is the environment variable through which downstream tasks see
// output key of task: PICOFLOW_OUT_<TASK>_<KEY>, both parts upper-cased with
// every character other than a letter or digit replaced by '_'. Task
// "db-dump" with output "path" gives PICOFLOW_OUT_DB_DUMP_PATH.
func OutputVar(task, key string) string {
	return "PICOFLOW_OUT_" + envPart(task) + "_" + envPart(key)
}

func envPart(s string) string {
	b := []byte(strings.ToUpper(s))
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}
