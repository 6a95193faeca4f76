package workflow

import (
	"fmt"
	"github.com/picoflow/picoflow/engine/yamlcheck"
	"github.com/picoflow/picoflow/executors"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

func (d *decoder) sshConfig(n *yaml.Node, path string) *executors.SSHConfig {
	f, ok := d.Mapping(n, path, configKeys[TypeSSH], func(key string) (string, string) {
		if key == "password" {
			return "password authentication is not supported; use identity_file or ssh-agent (key-based auth only)", ""
		}
		return otherTypeHint(TypeSSH)(key)
	})
	if !ok {
		return nil
	}
	c := &executors.SSHConfig{}
	req := requiredConfig[TypeSSH]
	hostPort := 0
	if e, ok := d.Require(f, path, "host", req.example); ok {
		p := yamlcheck.Join(path, "host")
		if s, ok := d.configText(e, p); ok {
			if hostPort, ok = d.checkHost(e.Val, p, s); ok {
				c.Host = s
			}
		}
	}
	if e, ok := f.Get("port"); ok {
		p := yamlcheck.Join(path, "port")
		if v, ok := d.Integer(e.Val, p); ok {
			switch {
			case v < 1 || v > 65535:
				d.Errorf(e.Val, p, "port %d out of range 1..65535", v)
			case hostPort != 0:
				d.Errorf(e.Val, p, "port is also given in host; give it once")
			default:
				c.Port = v
			}
		}
	}
	if e, ok := d.Require(f, path, "user", req.example); ok {
		c.User, _ = d.configText(e, yamlcheck.Join(path, "user"))
	}
	if e, ok := d.Require(f, path, "command", req.example); ok {
		c.Command, _ = d.configText(e, yamlcheck.Join(path, "command"))
	}
	if e, ok := f.Get("identity_file"); ok {
		c.IdentityFile, _ = d.configText(e, yamlcheck.Join(path, "identity_file"))
	}
	if e, ok := f.Get("passphrase"); ok {
		c.Passphrase, _ = d.configText(e, yamlcheck.Join(path, "passphrase"))
	}
	if e, ok := f.Get("known_hosts"); ok {
		c.KnownHosts, _ = d.configText(e, yamlcheck.Join(path, "known_hosts"))
	}
	if e, ok := f.Get("connect_timeout"); ok {
		c.ConnectTimeout, _ = d.duration(e.Val, yamlcheck.Join(path, "connect_timeout"), true)
	}
	if e, ok := f.Get("insecure_ignore_host_key"); ok {
		c.InsecureIgnoreHostKey, _ = d.Boolean(e.Val, yamlcheck.Join(path, "insecure_ignore_host_key"))
		if kh, ok := f.Get("known_hosts"); ok && c.InsecureIgnoreHostKey {
			d.Report(kh.Key, yamlcheck.Join(path, "known_hosts"), Problem{
				Msg:  "known_hosts is ignored when insecure_ignore_host_key is true",
				Hint: "remove one of the two",
			})
		}
	}
	return c
}

// checkHost validates "host" or "host:port" and returns the port, 0 when
// none is given. A host holding a reference is only known at run time.
func (d *decoder) checkHost(n *yaml.Node, path, s string) (int, bool) {
	if hasRef(s) {
		return 0, true
	}
	bad := func(hint string) (int, bool) {
		d.Report(n, path, Problem{Msg: fmt.Sprintf("invalid host %q", s), Hint: hint})
		return 0, false
	}
	if strings.Contains(s, "@") {
		return bad("put the login user in config.user, not in host")
	}
	if strings.Contains(s, "://") {
		return bad(`write the host name only, as "db.example.com" or "db.example.com:2222"`)
	}
	if net.ParseIP(s) != nil {
		return 0, true // includes bare IPv6 addresses
	}
	host, port := s, ""
	if strings.Contains(s, ":") {
		var err error
		if host, port, err = net.SplitHostPort(s); err != nil {
			return bad(`want "host" or "host:port"`)
		}
	}
	if host == "" || strings.IndexFunc(host, func(r rune) bool {
		return !(r == '.' || r == '-' || r == '_' || r == ':' || r == '%' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) >= 0 {
		return bad(`want "host" or "host:port"`)
	}
	if port == "" {
		return 0, true
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return bad("the port must be a number in 1..65535")
	}
	return p, true
}

var httpMethods = []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"}

func (d *decoder) httpConfig(n *yaml.Node, path string) *executors.HTTPConfig {
	f, ok := d.Mapping(n, path, configKeys[TypeHTTP], otherTypeHint(TypeHTTP))
	if !ok {
		return nil
	}
	c := &executors.HTTPConfig{Method: "GET"}
	if e, ok := d.Require(f, path, "url", requiredConfig[TypeHTTP].example); ok {
		p := yamlcheck.Join(path, "url")
		if s, ok := d.configText(e, p); ok && d.checkURL(e.Val, p, s) {
			c.URL = s
		}
	}
	if e, ok := f.Get("method"); ok {
		p := yamlcheck.Join(path, "method")
		if s, ok := d.Text(e.Val, p); ok {
			if m := strings.ToUpper(s); yamlcheck.IsKnown(m, httpMethods) {
				c.Method = m
			} else {
				pr := Problem{Msg: fmt.Sprintf("unknown method %q", s), Suggest: yamlcheck.Suggest(m, httpMethods)}
				if pr.Suggest == "" {
					pr.Hint = "use " + strings.Join(httpMethods, ", ")
				}
				d.Report(e.Val, p, pr)
			}
		}
	}
	if e, ok := f.Get("headers"); ok {
		c.Headers = d.headers(e.Val, yamlcheck.Join(path, "headers"))
	}
	json, hasJSON := f.Get("json")
	if hasJSON {
		c.JSON, _ = d.jsonValue(json.Val, yamlcheck.Join(path, "json"), 0)
	}
	if e, ok := f.Get("body"); ok {
		p := yamlcheck.Join(path, "body")
		if s, ok := d.Str(e.Val, p); ok && d.refs(e.Val, p, s) {
			c.Body = s
		}
		if hasJSON {
			d.Report(e.Key, p, Problem{
				Msg:  fmt.Sprintf("json and body are mutually exclusive (json is at line %d)", json.Key.Line),
				Hint: "json encodes a YAML value as the request body; body sends a string as is",
			})
		}
	}
	if e, ok := f.Get("timeout"); ok {
		c.Timeout, _ = d.duration(e.Val, yamlcheck.Join(path, "timeout"), true)
	}
	if e, ok := f.Get("expect_status"); ok {
		c.ExpectStatus = d.expectStatus(e.Val, yamlcheck.Join(path, "expect_status"))
	}
	if e, ok := f.Get("outputs"); ok {
		c.Outputs, _ = d.StringMap(e.Val, yamlcheck.Join(path, "outputs"), func(k *yaml.Node, p, name string) bool {
			if !executors.ValidEnvName(name) {
				d.Report(k, p, Problem{
					Msg:  fmt.Sprintf("invalid output name %q", name),
					Hint: "use letters, digits and underscores, not starting with a digit",
				})
				return false
			}
			return true
		}, func(v *yaml.Node, p, s string) bool {
			if _, err := executors.ParseOutputPath(s); err != nil {
				d.Report(v, p, Problem{Msg: err.Error(), Hint: `write a path into the JSON response such as ".version" or ".data.items[0].id"`})
				return false
			}
			return true
		})
	}
	if e, ok := f.Get("ca_file"); ok {
		c.CAFile, _ = d.configText(e, yamlcheck.Join(path, "ca_file"))
	}
	return c
}

func (d *decoder) checkURL(n *yaml.Node, path, s string) bool {
	if hasRef(s) && !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		return true // scheme and host come from a reference
	}
	u, err := url.Parse(s)
	if err != nil {
		d.Report(n, path, Problem{Msg: fmt.Sprintf("invalid url: %v", err), Err: err})
		return false
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		d.Report(n, path, Problem{Msg: fmt.Sprintf("url %q must use http or https", s), Hint: `write "https://host/path"`})
		return false
	}
	if u.Host == "" {
		d.Errorf(n, path, "url %q has no host", s)
		return false
	}
	return true
}

// validHeaderName reports whether s is an HTTP token (RFC 9110).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

func (d *decoder) expectStatus(n *yaml.Node, path string) []int {
	one := func(n *yaml.Node, p string) (int, bool) {
		v, ok := d.Integer(n, p)
		if ok && (v < 100 || v > 599) {
			d.Errorf(n, p, "status %d out of range 100..599", v)
			return 0, false
		}
		return v, ok
	}
	r := yamlcheck.Resolve(n)
	if r != nil && r.Kind == yaml.SequenceNode {
		if len(r.Content) == 0 {
			d.Report(n, path, Problem{Msg: "empty list", Hint: "leave expect_status out to accept any 2xx"})
			return nil
		}
		out := make([]int, 0, len(r.Content))
		for i, item := range r.Content {
			if !d.Visit(item) {
				return nil
			}
			if v, ok := one(item, yamlcheck.Index(path, i)); ok {
				out = append(out, v)
			}
		}
		return out
	}
	if v, ok := one(n, path); ok {
		return []int{v}
	}
	return nil
}

// maxJSONDepth bounds the nesting of a json value; it also stops
// recursive anchors.
const maxJSONDepth = 64

// jsonValue converts a YAML value into what encoding/json produces when
// decoding into an any: map[string]any, []any, string, float64 or int64,
// bool and nil. Mapping keys become their text.
func (d *decoder) jsonValue(n *yaml.Node, path string, depth int) (any, bool) {
	if depth > maxJSONDepth {
		d.Errorf(n, path, "value nested more than %d levels deep", maxJSONDepth)
		return nil, false
	}
	if !d.Visit(n) {
		return nil, false
	}
	r := yamlcheck.Resolve(n)
	if r == nil {
		return nil, true
	}
	switch r.Kind {
	case yaml.MappingNode:
		list, ok := d.Entries(r, path)
		m := make(map[string]any, len(list))
		for _, f := range list {
			v, vok := d.jsonValue(f.Val, yamlcheck.Join(path, f.Name), depth+1)
			m[f.Name] = v
			ok = ok && vok
		}
		return m, ok
	case yaml.SequenceNode:
		a := make([]any, len(r.Content))
		ok := true
		for i, item := range r.Content {
			v, vok := d.jsonValue(item, yamlcheck.Index(path, i), depth+1)
			a[i] = v
			ok = ok && vok
		}
		return a, ok
	case yaml.ScalarNode:
	default:
		d.Errorf(n, path, "unsupported value %s", yamlcheck.Describe(n))
		return nil, false
	}
	switch r.ShortTag() {
	case "!!null":
		return nil, true
	case "!!bool":
		var b bool
		if err := r.Decode(&b); err == nil {
			return b, true
		}
	case "!!int":
		var i int64
		if err := r.Decode(&i); err == nil {
			return i, true
		}
		var f float64
		if err := r.Decode(&f); err == nil {
			return f, true
		}
	case "!!float":
		var f float64
		if err := r.Decode(&f); err == nil {
			if math.IsNaN(f) || math.IsInf(f, 0) {
				d.Errorf(n, path, "%s cannot be represented in JSON", r.Value)
				return nil, false
			}
			return f, true
		}
	}
	if !d.refs(n, path, r.Value) {
		return nil, false
	}
	return r.Value, true
}

// headers decodes an http task's headers: valid names, each once whatever
// its case, values without line breaks, references checked.
func (d *decoder) headers(n *yaml.Node, path string) map[string]string {
	canon := map[string]string{} // header names are case-insensitive
	h, _ := d.StringMap(n, path, func(k *yaml.Node, p, name string) bool {
		if !validHeaderName(name) {
			d.Errorf(k, p, "invalid header name %q", name)
			return false
		}
		if first, dup := canon[strings.ToLower(name)]; dup {
			d.Errorf(k, p, "header %q repeats %q: header names are case-insensitive", name, first)
			return false
		}
		canon[strings.ToLower(name)] = name
		return true
	}, func(v *yaml.Node, p, s string) bool {
		if strings.ContainsAny(s, "\r\n\x00") {
			d.Errorf(v, p, "header value must not contain line breaks or NUL")
			return false
		}
		return d.refs(v, p, s)
	})
	return h
}
