"""Images in and out of the library: decoding and encoding files safely (:mod:`.imageio`), the
checks and conversions every public function applies at its edge (:mod:`.tensors`), the bundled
sample gallery (:mod:`.samples`, photos and licences in ``gallery/``), and the separable filters
shared by the distortions and the classic metrics (:mod:`.filters`)."""
