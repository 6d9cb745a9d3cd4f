import numpy as np, torch
from bci_credit.deep.models import PerImageStandardization
x=torch.randn(4,3,8,8)*3+2
x[1]=5.0
y=PerImageStandardization()(x).numpy()
xn=x.numpy()
for i in range(4):
    f=xn[i].ravel(); n=f.size
    ref=(xn[i]-f.mean())/max(f.std(), 1/np.sqrt(n))
    print(i, np.abs(ref-y[i]).max())
