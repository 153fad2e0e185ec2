module example.com/vulnapp

go 1.26.0
