package tracepush

import "google.golang.org/protobuf/encoding/protowire"

// attribute checks a top-level attribute (a KeyValue field) of an owner:
// its structure, and its key and values against the limits.
func (s *splitter) attribute(f *field, name string, own owner, index int) error {
	if err := s.want(f, protowire.BytesType, name); err != nil {
		return err
	}
	s.own, s.ownIndex = own, index
	return s.keyValue(f.val, 0, nil)
}

// broke notes a limit broken by the current attribute, in s.prob unless a
// limit is already noted there.
func (s *splitter) broke(kind problemKind, top []byte, size, limit int) {
	if s.prob.reason != "" {
		return
	}
	*s.prob = problem{reason: ReasonAttributeTooLarge, owner: s.own, index: s.ownIndex, kind: kind, key: top, size: size, limit: limit}
}

// keyValue checks a KeyValue at a nesting depth; top is the key of the
// top-level attribute it is in (nil for that attribute itself).
func (s *splitter) keyValue(b []byte, depth int, top []byte) error {
	var key []byte
	seen := false
	for len(b) > 0 {
		var f field
		var err error
		if b, err = s.next(b, &f); err != nil {
			return err
		}
		switch f.num {
		case kvKey:
			if err := s.want(&f, protowire.BytesType, "attribute key"); err != nil {
				return err
			}
			key, seen = f.val, true
		case kvKeyStrindex:
			err = s.want(&f, protowire.VarintType, "attribute key_strindex")
		case kvValue:
			if !seen {
				// pdata writes the value first: messages name the key.
				key, seen = findKey(b), true
			}
			name := top
			if name == nil {
				name = key
			}
			if err = s.wantIn(&f, protowire.BytesType, name); err == nil {
				err = s.anyValue(f.val, depth, name)
			}
		}
		if err != nil {
			return err
		}
	}
	if max := s.lim.MaxAttributeKeyBytes; max > 0 && len(key) > max {
		kind, name := keyTooLong, key
		if depth > 0 {
			kind, name = innerKeyTooLong, top
		}
		s.broke(kind, name, len(key), max)
	}
	return nil
}

// findKey returns the last key among the fields of a KeyValue; it leaves
// errors to the walk.
func findKey(b []byte) []byte {
	var key []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return key
		}
		b = b[n:]
		if num == kvKey && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return key
			}
			key, b = v, b[m:]
			continue
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return key
		}
		b = b[n:]
	}
	return key
}

// wantIn is want for the fields inside the value of attribute top.
func (s *splitter) wantIn(f *field, typ protowire.Type, top []byte) error {
	if f.typ != typ {
		return s.errorf("attribute %q: field %d of its value is %s, not %s", truncate(string(top)), f.num, wireTypeName(f.typ), wireTypeName(typ))
	}
	return nil
}

func (s *splitter) anyValue(b []byte, depth int, top []byte) error {
	if depth > maxValueDepth {
		return s.errorf("attribute %q: its value nests more than %d deep", truncate(string(top)), maxValueDepth)
	}
	for len(b) > 0 {
		var f field
		rest, err := s.next(b, &f)
		if err != nil {
			return err
		}
		b = rest
		switch f.num {
		case valueString, valueBytes:
			if err = s.wantIn(&f, protowire.BytesType, top); err != nil {
				return err
			}
			if max := s.lim.MaxAttributeValueBytes; max > 0 && len(f.val) > max {
				kind := valueTooLong
				if depth > 0 {
					kind = innerValueTooLong
				}
				s.broke(kind, top, len(f.val), max)
			}
		case valueBool, valueInt, valueStringStrindex:
			err = s.wantIn(&f, protowire.VarintType, top)
		case valueDouble:
			err = s.wantIn(&f, protowire.Fixed64Type, top)
		case valueArray, valueKvlist:
			if err = s.wantIn(&f, protowire.BytesType, top); err == nil {
				err = s.list(f.val, f.num == valueKvlist, depth+1, top)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// list checks an ArrayValue or (kv) a KeyValueList.
func (s *splitter) list(b []byte, kv bool, depth int, top []byte) error {
	for len(b) > 0 {
		var f field
		rest, err := s.next(b, &f)
		if err != nil {
			return err
		}
		b = rest
		if f.num != listValues {
			continue
		}
		if err := s.wantIn(&f, protowire.BytesType, top); err != nil {
			return err
		}
		if kv {
			err = s.keyValue(f.val, depth, top)
		} else {
			err = s.anyValue(f.val, depth, top)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
