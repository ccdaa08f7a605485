package assistant

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/accountdb/accountdb/domain"
)

// systemPrompt tells the model what it is given and how to cite.
func systemPrompt(mode string, now time.Time) string {
	var b strings.Builder
	b.WriteString("You are the assistant of AccountDB, an event-sourced control plane for Proxmox VE virtual machines and containers. ")
	if mode == domain.AssistantExplain {
		b.WriteString("You explain one VM's history from its events. ")
	} else {
		b.WriteString("You answer an operator's questions about their tenant's audit log. ")
	}
	b.WriteString("You are given events as JSON lines, oldest first; each has a position, the time it was recorded, its stream, type, actor and data. ")
	b.WriteString("Answer only from these events. Cite every event your answer relies on by its position in the form [#<position>], for example [#123]. ")
	b.WriteString("If the events do not answer the question, say so plainly. ")
	b.WriteString("Values shown as [personal], [redacted] or [erased] are withheld on purpose: never guess them. ")
	b.WriteString("Be concise. The time now is " + now.UTC().Format(time.RFC3339) + ".")
	return b.String()
}

func userPrompt(q Question, lines []string) string {
	var b strings.Builder
	if q.Mode == domain.AssistantExplain {
		b.WriteString("The VM is vm-" + q.VMID.String() + ".\n")
	}
	b.WriteString("Events:\n")
	if len(lines) == 0 {
		b.WriteString("(none)\n")
	}
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	b.WriteString("\nQuestion: ")
	b.WriteString(q.Text)
	return b.String()
}

// positionOf reads the position back from a sent line.
func positionOf(line string) int64 {
	var s struct {
		Position int64 `json:"position"`
	}
	_ = json.Unmarshal([]byte(line), &s)
	return s.Position
}

func sortedPositions(sent map[int64]bool) []int64 {
	out := make([]int64, 0, len(sent))
	for p := range sent {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}
