from recbole_anchor.model.general_recommender.anchormultvae import AnchorMultVAE
from recbole_anchor.model.general_recommender.anchorrecvae import AnchorRecVAE

__all__ = ["AnchorMultVAE", "AnchorRecVAE"]
