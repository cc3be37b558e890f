"""The monthly bulletin (通报) as an editable Word document: the content assembled from a stored
run (`build`), its wording (`text`), and the document written with python-docx (`officedoc`)."""
