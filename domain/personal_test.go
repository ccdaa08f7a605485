package domain

import (
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// TestPersonalFieldsNameRealStringFields keeps the table of personal data
// honest: every event type it names exists, every field is a string field of
// that event's JSON, and a subject field holds a user id.
func TestPersonalFieldsNameRealStringFields(t *testing.T) {
	for _, typ := range PersonalEventTypes() {
		f, ok := eventFactories[typ]
		if !ok {
			t.Errorf("%s: no such event type", typ)
			continue
		}
		p, _ := PersonalFieldsOf(typ)
		fields := jsonFields(reflect.TypeOf(f()).Elem())
		for _, name := range p.Fields {
			if k, ok := fields[name]; !ok || k != reflect.TypeOf("") {
				t.Errorf("%s: personal field %q is not a string field of its JSON (%v)", typ, name, k)
			}
		}
		if p.SubjectField != SubjectFromStream {
			if k, ok := fields[p.SubjectField]; !ok || k != reflect.TypeOf(uuid.UUID{}) {
				t.Errorf("%s: subject field %q is not a uuid field", typ, p.SubjectField)
			}
		}
	}
	if _, ok := PersonalFieldsOf("vm_created"); ok {
		t.Error("vm_created has no personal fields")
	}
}

// jsonFields maps the JSON names of t's fields (embedded structs flattened)
// to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func TestEraseNeedsTheEmail(t *testing.T) {
	u := &User{Version: 1, Email: "ada@example.com", Status: UserActive}
	for _, c := range []string{"", "bob@example.com"} {
		if _, err := u.Erase(c, "request"); err != ErrErasureConfirmation {
			t.Errorf("Erase(%q) = %v", c, err)
		}
	}
	evs, err := u.Erase(" ADA@example.com ", "request")
	if err != nil || len(evs) != 1 {
		t.Fatalf("Erase = %v, %v", evs, err)
	}
	u.Apply(evs[0], u.CreatedAt)
	if u.Exists() || u.Email != "" {
		t.Fatalf("an erased user must not exist for commands: %+v", u)
	}
	if _, err := u.Erase("", "request"); err != ErrNotFound {
		t.Fatalf("erasing again: %v", err)
	}
}
