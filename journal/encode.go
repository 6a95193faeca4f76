package journal

import (
	"slices"
	"strconv"
	"unicode/utf8"
)

// appendEvent appends the JSON payload of e to dst: the bytes json.Marshal
// gives for e, field for field (the struct's order, omitempty, map keys
// sorted, strings escaped as json.Marshal escapes them, HTML characters
// included), written without reflection. Most of a short task's journal
// CPU was encoding/json's walk of Event's 26 fields, three events a task;
// TestAppendEventIsMarshal and FuzzAppendEventIsMarshal hold the two
// encoders to the same bytes. A field added to Event is added here too
// (TestAppendEventIsMarshal sets every field and fails until it is).
func appendEvent(dst []byte, e *Event) []byte {
	b := append(dst, `{"ts":`...)
	b = strconv.AppendInt(b, e.Time, 10)
	b = appendStr(b, `,"run":`, e.Run)
	b = appendStr(b, `,"task":`, e.Task)
	b = appendInt(b, `,"attempt":`, int64(e.Attempt))
	b = appendStr(b, `,"workflow":`, e.Workflow)
	b = appendStr(b, `,"def_hash":`, e.DefHash)
	b = appendStr(b, `,"definition":`, e.Definition)
	b = appendStr(b, `,"source":`, e.Source)
	b = appendStr(b, `,"trigger":`, e.Trigger)
	b = appendMap(b, `,"params":`, e.Params)
	b = appendInt(b, `,"fire_time":`, e.FireTime)
	b = appendStr(b, `,"rerun_of":`, e.RerunOf)
	b = appendStr(b, `,"log":`, e.LogPath)
	b = appendInt(b, `,"pgid":`, int64(e.PGID))
	b = appendBool(b, `,"resumed":`, e.Resumed)
	b = appendStr(b, `,"status":`, e.Status)
	b = appendInt(b, `,"exit_code":`, int64(e.ExitCode))
	b = appendStr(b, `,"error":`, e.Error)
	b = appendInt(b, `,"duration_ms":`, e.DurationMS)
	b = appendStr(b, `,"tail":`, e.Tail)
	b = appendMap(b, `,"outputs":`, e.Outputs)
	b = appendBool(b, `,"retryable":`, e.Retryable)
	b = appendStr(b, `,"reason":`, e.Reason)
	b = appendStr(b, `,"by":`, e.By)
	b = appendStr(b, `,"reused_from":`, e.ReusedFrom)
	b = appendInt(b, `,"retry_at":`, e.RetryAt)
	b = appendInt(b, `,"backoff_ms":`, e.BackoffMS)
	return append(b, '}')
}

func appendStr(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendQuoted(append(b, key...), s)
}

func appendInt(b []byte, key string, n int64) []byte {
	if n == 0 {
		return b
	}
	return strconv.AppendInt(append(b, key...), n, 10)
}

func appendBool(b []byte, key string, v bool) []byte {
	if !v {
		return b
	}
	return append(append(b, key...), "true"...)
}

func appendMap(b []byte, key string, m map[string]string) []byte {
	if len(m) == 0 {
		return b
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(append(b, key...), '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(appendQuoted(b, k), ':')
		b = appendQuoted(b, m[k])
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendQuoted appends s as a JSON string, escaped as encoding/json
// escapes it: ", \ and the short escapes \b \f \n \r \t, other control
// characters and <, >, & as \u00XX, an invalid byte as \ufffd, and U+2028
// and U+2029 as \u2028 and \u2029.
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(append(b, s[start:i]...), `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(append(b, s[start:i]...), '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(append(b, s[start:]...), '"')
}
