"""Person-independent yardsticks for real data: grouped folds, scores, and the shape of a set's report.

Each data kind (speech, e4 and wesad, faces, deap) has a module here that trains the deployed recipe fold by fold,
scores the int8 bundle through the edge's own preprocessing, and scores the classical references on the same
folds. `bench/realdata.py` and `mmer trainer evaluate` are thin callers of these modules.
"""

# data kind -> the module that measures it: yardstick(folder, options) and score_bundle(bundle_dir, folder, ...)
KINDS = {
    "speech": "trainer.yardstick.speech",
    "e4": "trainer.yardstick.e4",
    "wesad": "trainer.yardstick.e4",
    "faces": "trainer.yardstick.faces",
    "deap": "trainer.yardstick.deap",
}
