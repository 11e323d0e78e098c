package netsettings

import "iter"

// The scanners below split JSON that is already known to be valid (Decode
// checks the whole document with json.Valid first) without validating it
// again: they only find where values start and end. Returned slices share
// memory with the input.

// scanObject yields the raw key (with its quotes) and raw value of each member
// of the JSON object v.
func scanObject(v []byte) iter.Seq2[[]byte, []byte] {
	return func(yield func([]byte, []byte) bool) {
		i := skipSpace(v, 0) + 1 // past '{'
		for {
			i = skipSpace(v, i)
			if i >= len(v) || v[i] == '}' {
				return
			}
			if v[i] == ',' {
				i = skipSpace(v, i+1)
			}
			kend := i + valueLen(v[i:])
			key := v[i:kend]
			i = skipSpace(v, kend) + 1 // past ':'
			i = skipSpace(v, i)
			vend := i + valueLen(v[i:])
			if !yield(key, v[i:vend]) {
				return
			}
			i = vend
		}
	}
}

// scanArray yields the raw elements of the JSON array v.
func scanArray(v []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		i := skipSpace(v, 0) + 1 // past '['
		for {
			i = skipSpace(v, i)
			if i >= len(v) || v[i] == ']' {
				return
			}
			if v[i] == ',' {
				i = skipSpace(v, i+1)
			}
			end := i + valueLen(v[i:])
			if !yield(v[i:end]) {
				return
			}
			i = end
		}
	}
}

func skipSpace(v []byte, i int) int {
	for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == '\n' || v[i] == '\r') {
		i++
	}
	return i
}

// valueLen returns the length of the JSON value at the start of v.
func valueLen(v []byte) int {
	if len(v) == 0 {
		return 0
	}
	switch v[0] {
	case '"':
		return stringLen(v)
	case '{', '[':
		depth := 0
		for i := 0; i < len(v); i++ {
			switch v[i] {
			case '"':
				i += stringLen(v[i:]) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(v)
	}
	i := 0 // number, true, false or null
	for i < len(v) && v[i] != ',' && v[i] != '}' && v[i] != ']' && v[i] != ' ' && v[i] != '\t' && v[i] != '\n' && v[i] != '\r' {
		i++
	}
	return i
}

// stringLen returns the length of the JSON string at the start of v,
// quotes included.
func stringLen(v []byte) int {
	for i := 1; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(v)
}
