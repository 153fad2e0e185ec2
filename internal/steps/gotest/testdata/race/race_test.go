package race

import "testing"

func TestCountRace(t *testing.T) { Count(8) }

func TestFine(t *testing.T) {}
