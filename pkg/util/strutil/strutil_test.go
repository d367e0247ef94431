package strutil

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTruncate(t *testing.T) {
	require.Equal(t, "short", Truncate("short", 5))
	require.Equal(t, "abc…", Truncate("abcdef", 3))
	require.Equal(t, "a…", Truncate("aéb", 2), "never cuts a character in two")
	require.Equal(t, "…", Truncate("éé", 1))
}
