"""Weight clustering after pruning (tfmot's `cluster_weights`), sparsity-preserving by default."""

from __future__ import annotations

from prunelab.core.specs import ClusterStage
from prunelab.worker.training.tf import keras, tfmot

CENTROID_INIT = {
    "linear": "LINEAR",
    "kmeans_plus_plus": "KMEANS_PLUS_PLUS",
    "density_based": "DENSITY_BASED",
    "random": "RANDOM",
}


def cluster(model: keras.Model, stage: ClusterStage) -> keras.Model:
    """The stripped model with every clusterable layer wrapped to share `number_of_clusters` values per kernel."""
    init = getattr(tfmot.clustering.keras.CentroidInitialization, CENTROID_INIT[stage.centroid_init])
    return tfmot.clustering.keras.cluster_weights(
        model,
        number_of_clusters=stage.number_of_clusters,
        cluster_centroids_init=init,
        preserve_sparsity=stage.preserve_sparsity,
    )


def strip(model: keras.Model) -> keras.Model:
    """The clustered model without its wrappers: plain layers whose kernels hold the shared values."""
    return tfmot.clustering.keras.strip_clustering(model)
