package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/picoflow/picoflow/executors"
	"sort"
)

// extract evaluates the output paths (name -> path) against a JSON body.
func extract(body []byte, paths map[string]string) (map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // numbers keep their exact text
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("the response is not JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("the response holds more than one JSON value")
	}
	names := make([]string, 0, len(paths))
	for n := range paths {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make(map[string]string, len(paths))
	var errs []error
	for _, name := range names {
		p, err := executors.ParseOutputPath(paths[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		v, ok := p.Lookup(doc)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: %s is not in the response", name, p))
			continue
		}
		s, err := format(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		if len(s) > MaxOutput {
			errs = append(errs, fmt.Errorf("%s: %s is %d bytes, more than %d KiB", name, p, len(s), MaxOutput>>10))
			continue
		}
		out[name] = s
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// format renders a JSON value as an output: strings verbatim, numbers as
// their JSON text, true/false/null, objects and arrays as compact JSON.
func format(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		if v {
			return "true", nil
		}
		return "false", nil
	case nil:
		return "null", nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n"))), nil
}
