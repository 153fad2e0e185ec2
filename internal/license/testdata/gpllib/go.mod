module example.com/gpllib

go 1.26.0
