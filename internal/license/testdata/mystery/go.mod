module example.com/mystery

go 1.26.0
