package domain

import (
	"strings"
	"unicode/utf8"
)

// ValidText reports whether s can be stored as PostgreSQL text or inside
// jsonb: valid UTF-8 without NUL characters. PostgreSQL refuses anything
// else, so every string from outside is checked before it reaches SQL.
func ValidText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// InvalidTextMessage is the field error for a string that is not ValidText.
const InvalidTextMessage = "must be valid UTF-8 without NUL characters"

// PrintableName is s made safe to echo as a field name: invalid bytes and NUL
// become U+FFFD.
func PrintableName(s string) string {
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", "\uFFFD"), "\uFFFD")
}
