package captcha

// TakeSlot and FreeSlot let tests fill the drawing slots.
func (cs *Captchas) TakeSlot() { cs.slots <- struct{}{} }

// FreeSlot frees a slot taken by TakeSlot.
func (cs *Captchas) FreeSlot() { <-cs.slots }
