package pveschema

//go:generate go run ../pveschemagen -out schema.json
