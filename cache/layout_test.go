package cache

import (
	"reflect"
	"testing"
)

// pointers returns the paths within t of the fields that hold a pointer
// the garbage collector follows, prefixed with path.
func pointers(t reflect.Type, path string) []string {
	switch t.Kind() {
	case reflect.Pointer, reflect.UnsafePointer, reflect.Map, reflect.Chan, reflect.Func,
		reflect.Interface, reflect.Slice, reflect.String:
		return []string{path + " (" + t.String() + ")"}
	case reflect.Array:
		if t.Len() == 0 {
			return nil
		}
		return pointers(t.Elem(), path+"[]")
	case reflect.Struct:
		var out []string
		for i := range t.NumField() {
			f := t.Field(i)
			out = append(out, pointers(f.Type, path+"."+f.Name)...)
		}
		return out
	}
	return nil
}

// TestSlotHasNoPointers: the parts of the store that grow with its
// entries hold no pointer the collector must follow, so that marking a
// full cache costs next to nothing: a slot, the index's keys and values,
// and a blob, which is bytes (its slice is marked, never scanned). A
// field with a pointer added to slot fails here, not in a latency graph
// weeks later.
func TestSlotHasNoPointers(t *testing.T) {
	if p := pointers(reflect.TypeFor[slot](), "slot"); len(p) > 0 {
		t.Errorf("slot holds pointers: %v", p)
	}
	// The store's fields must be the slots and these pointer-free maps
	// and byte slices: integers hold no pointer.
	sh := reflect.TypeFor[shard]()
	for field, want := range map[string]reflect.Type{
		"index": reflect.TypeFor[map[uint64]int32](),
		"slots": reflect.TypeFor[[]slot](),
		"blobs": reflect.TypeFor[[][]byte](),
	} {
		f, ok := sh.FieldByName(field)
		if !ok || f.Type != want {
			t.Errorf("shard.%s is %v, want %v", field, f.Type, want)
		}
	}
	// And the walk itself finds a pointer where there is one.
	type withPointer struct {
		_ int
		_ [1]struct{ _ string }
	}
	if p := pointers(reflect.TypeFor[withPointer](), "x"); len(p) != 1 {
		t.Errorf("the walk found %v in a struct with one string", p)
	}
}
