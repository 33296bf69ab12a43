"""The terminal's LwM2M objects: the model-checked tree (:mod:`.base`), the standard
objects (:mod:`.standard`) and the POS objects 26241-26244 (:mod:`.pos_objects`)."""
