package chart

import "testing"

func TestSparkScalesToTheLargestShown(t *testing.T) {
	if got := Spark([]int{100, 0, 4, 8}, 3); got != " ▄█" {
		t.Errorf("Spark = %q", got)
	}
	if got := Spark([]int{1, 8}, 4); got != "▁█  " {
		t.Errorf("a short history is padded on the right: %q", got)
	}
	if got := Spark(nil, 2); got != "  " {
		t.Errorf("empty: %q", got)
	}
}

func TestColumnsStackEighths(t *testing.T) {
	got := Columns([]int{16, 8, 1, 0}, 2, 2)
	if got[0] != "██      " || got[1] != "████▁▁  " {
		t.Errorf("Columns = %q", got)
	}
}
