package store

// WaiterEvents is how many watch events waiters have received so far.
func WaiterEvents() int64 { return waiterEvents.Load() }
