from recbole_anchor.model.general_recommender.anchormultvae import AnchorMultVAE

__all__ = ["AnchorMultVAE"]
