package yamlcheck

import (
	"math"
	"strings"
	"unicode/utf8"
)

// Suggest returns the candidate closest to word by edit distance (case
// folded), or "" if none is close enough to be a plausible typo. It is the
// one "did you mean" of PicoFlow: commands, config keys and secret names
// use it too. It is meant for names already known to be wrong, so its cost
// never touches valid input.
func Suggest(word string, candidates []string) string {
	return NewSuggester(candidates, math.MaxInt).Suggest(word)
}

// Suggester finds close names among many candidates, such as the task
// names of a big workflow. Every unknown name is compared with every
// candidate, so a file full of unknown names would take quadratic time:
// budget caps the comparisons, after which suggestions stop.
type Suggester struct {
	cands  []string
	lower  []string
	budget int
	cache  map[string]string
	dist   distance
}

func NewSuggester(candidates []string, budget int) *Suggester {
	s := &Suggester{cands: candidates, lower: make([]string, len(candidates)), budget: budget}
	for i, c := range candidates {
		s.lower[i] = strings.ToLower(c)
	}
	return s
}

func (s *Suggester) Suggest(word string) string {
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
