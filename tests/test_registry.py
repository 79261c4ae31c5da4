"""The registry seam: plugin first, then RecBole; and what RecBole's own code is told."""
import pytest
import recbole.utils
from recbole.config import configurator
from recbole.data.dataloader import TrainDataLoader, UserDataLoader
from recbole.model.general_recommender.multivae import MultiVAE
from recbole.trainer.trainer import RecVAETrainer, Trainer

from recbole_anchor import registry
from recbole_anchor.errors import UnknownModelError
from recbole_anchor.model.general_recommender import AnchorMultVAE, AnchorRecVAE
from recbole_anchor.trainer import AnchorRecVAETrainer
from recbole_anchor.trainer.features import TrainingFeatures

from conftest import make_config


class MyVAE(MultiVAE):
    """An autoencoder that RecBole's hard-coded loader table does not know."""


@pytest.mark.parametrize(
    "model,loader",
    [("AnchorMultVAE", UserDataLoader), (MyVAE, UserDataLoader), ("BPR", TrainDataLoader)],
)
def test_autoencoders_get_the_per_user_loader(model, loader):
    from recbole.data.utils import get_dataloader

    assert get_dataloader(make_config(model), "train") is loader


def test_recbole_get_model_knows_plugin_models():
    assert recbole.utils.get_model("AnchorMultVAE") is AnchorMultVAE
    assert configurator.get_model("AnchorRecVAE") is AnchorRecVAE
    assert recbole.utils.get_model("MultiVAE") is MultiVAE
    assert registry.recbole_get_model("MultiVAE") is MultiVAE
    with pytest.raises(UnknownModelError, match="did you mean MultiVAE"):
        registry.get_model("multivae")


def test_trainers_get_the_training_features_and_recbole_classes_stay_recbole_s():
    plain = registry.get_trainer(make_config("MultiVAE")["MODEL_TYPE"], "MultiVAE")
    recvae = registry.get_trainer(None, "RecVAE")
    anchor_recvae = registry.get_trainer(None, "AnchorRecVAE")
    assert issubclass(plain, TrainingFeatures) and plain.__mro__[2] is Trainer
    assert issubclass(recvae, TrainingFeatures) and issubclass(recvae, RecVAETrainer)
    assert issubclass(anchor_recvae, AnchorRecVAETrainer)
    assert registry.get_trainer(None, "RecVAE") is recvae  # one subclass per trainer class
    assert not issubclass(Trainer, TrainingFeatures)


def test_load_data_and_model_is_the_plugin_s():
    import recbole.quick_start

    from recbole_anchor.quick_start import load_data_and_model

    assert recbole.quick_start.load_data_and_model is load_data_and_model
