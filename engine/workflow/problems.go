package workflow

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Problem is one thing wrong with a workflow file, located as precisely as
// the YAML allows. Error formats it as
//
//	FILE:LINE:COL: PATH: MSG (did you mean "SUGGEST"?) (hint: HINT)
//
// leaving out the parts that are empty or zero, for example
//
//	backup.yaml:12:5: tasks[3].depends_on[0]: unknown task "bakup" (did you mean "backup"?)
type Problem struct {
	File    string `json:"file"`              // file name as given to Load or Parse
	Line    int    `json:"line"`              // 1-based; 0 when unknown
	Column  int    `json:"column"`            // 1-based; 0 when unknown
	Path    string `json:"path,omitempty"`    // YAML path such as "tasks[3].depends_on[0]"; "" for the whole file
	Msg     string `json:"message"`           // what is wrong, lowercase, no trailing period
	Suggest string `json:"suggest,omitempty"` // a known name close to the wrong one, if any
	Hint    string `json:"hint,omitempty"`    // how to fix it, if the message alone is not enough
	Err     error  `json:"-"`                 // underlying cause, if any (for example an *fs.PathError)
}

// Error implements error.
func (p Problem) Error() string {
	var b strings.Builder
	p.write(&b)
	return b.String()
}

// Unwrap returns the underlying cause, so errors.Is(err, fs.ErrNotExist)
// works through Problems.
func (p Problem) Unwrap() error { return p.Err }

func (p Problem) write(b *strings.Builder) {
	loc := p.File
	if p.Line > 0 {
		if loc == "" {
			loc = "line "
		} else {
			loc += ":"
		}
		loc += strconv.Itoa(p.Line)
		if p.Column > 0 {
			loc += ":" + strconv.Itoa(p.Column)
		}
	}
	if loc != "" {
		b.WriteString(loc)
		b.WriteString(": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	if p.Suggest != "" {
		b.WriteString(` (did you mean "`)
		b.WriteString(p.Suggest)
		b.WriteString(`"?)`)
	}
	if p.Hint != "" {
		b.WriteString(" (hint: ")
		b.WriteString(p.Hint)
		b.WriteString(")")
	}
}

// Problems is every problem found in one or more workflow files, sorted by
// file and position. Load, Parse and LoadPaths return a Problems value as
// their error; use errors.As to get at the individual problems.
type Problems []Problem

// Error implements error: one problem per line.
func (ps Problems) Error() string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte('\n')
		}
		p.write(&b)
	}
	return b.String()
}

// Unwrap returns the problems as errors, so errors.Is and errors.As see
// each Problem and its cause.
func (ps Problems) Unwrap() []error {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errs
}

// sortByPosition orders the problems of one file by line and column,
// keeping the order of discovery for problems at the same place.
func (ps Problems) sortByPosition() {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
}

// dedupe drops repeated problems, which arise when a mapping with a
// mistake is merged or aliased into several places.
func (ps Problems) dedupe() Problems {
	type key struct {
		line, col int
		path, msg string
	}
	seen := make(map[key]bool, len(ps))
	out := ps[:0]
	for _, p := range ps {
		k := key{p.Line, p.Column, p.Path, p.Msg}
		if !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	return out
}

// Suggest returns the candidate closest to word by edit distance (case
// folded), or "" if none is close enough to be a plausible typo. It is the
// one "did you mean" of PicoFlow: commands, config keys and secret names
// use it too. It is meant for names already known to be wrong, so its cost
// never touches valid input.
func Suggest(word string, candidates []string) string {
	return newSuggester(candidates, math.MaxInt).suggest(word)
}

func suggest(word string, candidates []string) string { return Suggest(word, candidates) }

// suggester finds close names among many candidates, such as the task
// names of a big workflow. Every unknown name is compared with every
// candidate, so a file full of unknown names would take quadratic time:
// budget caps the comparisons, after which suggestions stop.
type suggester struct {
	cands  []string
	lower  []string
	budget int
	cache  map[string]string
	dist   distance
}

func newSuggester(candidates []string, budget int) *suggester {
	s := &suggester{cands: candidates, lower: make([]string, len(candidates)), budget: budget}
	for i, c := range candidates {
		s.lower[i] = strings.ToLower(c)
	}
	return s
}

func (s *suggester) suggest(word string) string {
	if word == "" || s.budget <= 0 {
		return ""
	}
	if best, ok := s.cache[word]; ok {
		return best
	}
	limit := max(1, (utf8.RuneCountInString(word)+2)/3)
	lw := strings.ToLower(word)
	best, bestDist := "", limit+1
	for i, c := range s.cands {
		if c == word {
			continue
		}
		if d := len(c) - len(word); d > limit || -d > limit {
			continue // edit distance is at least the length difference
		}
		s.budget--
		if d := s.dist.between(lw, s.lower[i]); d < bestDist {
			best, bestDist = c, d
		}
	}
	if s.cache == nil {
		s.cache = make(map[string]string)
	}
	s.cache[word] = best
	return best
}

// EditDistance is the optimal string alignment distance between a and b,
// in runes, the measure Suggest uses.
func EditDistance(a, b string) int { return editDistance(a, b) }

// editDistance is the optimal string alignment distance between a and b.
func editDistance(a, b string) int {
	var d distance
	return d.between(a, b)
}

// distance holds the buffers of the edit distance, reused across calls.
type distance struct {
	ra, rb           []rune
	prev2, prev, cur []int
}

// between is the optimal string alignment distance between a and b,
// counted in runes: insertions, deletions, substitutions and swaps of two
// adjacent runes ("GTE" for "GET") each cost one.
func (d *distance) between(a, b string) int {
	ra, rb := d.ra[:0], d.rb[:0]
	for _, r := range a {
		ra = append(ra, r)
	}
	for _, r := range b {
		rb = append(rb, r)
	}
	d.ra, d.rb = ra, rb
	n := len(rb) + 1
	if cap(d.cur) < n {
		d.prev2, d.prev, d.cur = make([]int, n), make([]int, n), make([]int, n)
	}
	prev2, prev, cur := d.prev2[:n], d.prev[:n], d.cur[:n] // rows i-2, i-1, i
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	d.prev2, d.prev, d.cur = prev2, prev, cur
	return prev[len(rb)]
}
