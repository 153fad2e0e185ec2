module example.com/app

go 1.26.0

require (
	example.com/gpllib v0.1.0
	example.com/mystery v0.1.0
)

replace (
	example.com/gpllib => ../gpllib
	example.com/mystery => ../mystery
)
