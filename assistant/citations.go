package assistant

import (
	"regexp"
	"slices"
	"strconv"
)

// The model is asked to cite events as [#<position>]; a citation is kept
// only if that event was sent with the question, so an answer can never
// point at an event the asker could not see, nor at one that does not exist.
var citationPattern = regexp.MustCompile(`\[#(\d{1,19})\]`)

// citations are the positions answer cites that are in sent, in the order
// first cited, each once.
func citations(answer string, sent map[int64]bool) []int64 {
	out := []int64{}
	for _, m := range citationPattern.FindAllStringSubmatch(answer, -1) {
		p, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || !sent[p] || slices.Contains(out, p) {
			continue
		}
		out = append(out, p)
	}
	return out
}
