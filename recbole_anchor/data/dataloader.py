"""Dataloaders for the strong-generalization split."""
from logging import getLogger

import torch
from recbole.data.dataloader import UserDataLoader
from recbole.data.dataloader.abstract_dataloader import AbstractDataLoader
from recbole.data.interaction import Interaction


class TrainingUserDataLoader(UserDataLoader):
    """RecBole's per-user training loader, over the users that have interactions in
    its dataset only (RecBole's iterates every user ID). Under the SG split its
    dataset is the training part, so held-out users are never a training row."""

    def __init__(self, config, dataset, sampler, shuffle=True):
        self.logger = getLogger()
        self.uid_field = dataset.uid_field
        users = torch.unique(dataset.inter_feat[self.uid_field])
        self.user_list = Interaction({self.uid_field: users})
        self.sample_size = len(self.user_list)
        # UserDataLoader always shuffles.
        AbstractDataLoader.__init__(self, config, dataset, sampler, shuffle=True)
